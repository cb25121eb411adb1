"""The `cleanup-expired` job: what auth forgets, and when.

An ended session (expired, or revoked: logout, password change, reuse) is
kept `ended_session_days` after it ended, so a user's and an operator's
questions about it ("was that me?") can still be answered; a revoked one
must in any case outlive every access token issued before its revocation
(AuthSettings.revocation_lifetime_seconds, minutes), which one day already
does. Audit events are kept `audit_event_days` (a year by default: what
security logging standards such as PCI DSS 10.5.1 ask for).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from switchyard_kit import utc_now

from auth_service.service_layer.ports import RetentionStore


@dataclass(frozen=True)
class RetentionPolicy:
    ended_session_days: float = 30.0
    audit_event_days: float = 365.0


def cleanup_expired(
    store: RetentionStore, policy: RetentionPolicy, clock: Callable[[], datetime] = utc_now
) -> dict[str, int]:
    """Delete what is past its retention (each kind bounded per run by the
    store); how many of each went."""
    now = clock()
    return {
        "sessions": store.delete_sessions_ended_before(
            now - timedelta(days=policy.ended_session_days)
        ),
        "audit_events": store.delete_audit_events_before(
            now - timedelta(days=policy.audit_event_days)
        ),
    }
