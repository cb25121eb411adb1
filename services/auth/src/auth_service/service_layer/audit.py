"""The audit trail: one JSON log line and one `audit_events` row per event."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime

from auth_service.domain.model import AuditEvent
from auth_service.service_layer.ports import UnitOfWork

audit_logger = logging.getLogger("auth.audit")

# The events recorded (the `event_type` column and the log's `audit_event`).
SIGNUP = "signup"
LOGIN_SUCCEEDED = "login_succeeded"
LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_throttled"
REFRESHED = "token_refreshed"
REFRESH_OVERLAP = "token_refreshed_in_overlap"
REUSE_DETECTED = "refresh_token_reuse_detected"
LOGOUT = "logout"
SESSION_REVOKED = "session_revoked"
OTHER_SESSIONS_REVOKED = "other_sessions_revoked"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
PASSWORD_CHANGE_FAILED = "password_change_failed"  # noqa: S105 - an event name
PASSWORD_REHASHED = "password_rehashed"  # noqa: S105 - an event name
SIGNING_KEY_ROTATED = "signing_key_rotated"


def record(
    uow: UnitOfWork,
    event_type: str,
    now: datetime,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    client_address: str | None = None,
    user_agent: str | None = None,
    details: Mapping[str, str | int | bool] | None = None,
) -> AuditEvent:
    """Add the event to `uow` (stored when it commits); `emit` logs it once
    committed. Never pass a password, token or hash in `details`."""
    event = AuditEvent(
        id=str(uuid.uuid4()),
        occurred_at=now,
        event_type=event_type,
        user_id=user_id,
        session_id=session_id,
        client_address=client_address,
        user_agent=user_agent,
        details=dict(details or {}),
    )
    uow.audit.add(event)
    return event


def emit(*events: AuditEvent) -> None:
    """Log committed audit events, one JSON line each."""
    for event in events:
        _log(event)


def _log(event: AuditEvent) -> None:
    audit_logger.info(
        "audit %s",
        event.event_type,
        extra={
            "audit_event": event.event_type,
            "audit_id": event.id,
            "user_id": event.user_id,
            "session_id": event.session_id,
            "client_address": event.client_address,
            **{f"detail_{key}": value for key, value in event.details.items()},
        },
    )
