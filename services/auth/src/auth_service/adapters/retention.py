"""The retention job's deletions (RetentionStore), batched and bounded by the kit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from switchyard_kit import Database
from switchyard_kit.retention import RetentionBound, delete_in_batches

from auth_service.adapters import tables as t


class SqlRetentionStore:
    """RetentionStore over the auth database: at most `bound.max_rows` of each kind per run."""

    def __init__(self, database: Database, bound: RetentionBound) -> None:
        self.database = database
        self.bound = bound

    def delete_sessions_ended_before(self, cutoff: datetime) -> int:
        sessions = t.sessions
        ended = or_(sessions.c.expires_at < cutoff, sessions.c.revoked_at < cutoff)
        return delete_in_batches(
            self.database, sessions, ended, self.bound, dependents=[t.refresh_tokens.c.session_id]
        )

    def delete_audit_events_before(self, cutoff: datetime) -> int:
        events = t.audit_events
        return delete_in_batches(self.database, events, events.c.occurred_at < cutoff, self.bound)
