"""The relay's side of the outbox: unsent rows in order, marked once published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from payment_service.adapters import tables as t


@dataclass(frozen=True)
class OutboxRow:
    id: int
    payload: bytes


def lock_head(session: Session, limit: int) -> list[OutboxRow] | None:
    """The oldest unsent rows, locked for this transaction.

    On PostgreSQL rows another relay holds are skipped (FOR UPDATE SKIP
    LOCKED); if that means an older unsent row is held by someone else, this
    relay stands by (None) rather than publish out of order. So two relays
    can run (one active, one hot standby) and per-key order holds.
    """
    is_postgres = session.get_bind().dialect.name == "postgresql"
    statement = select(t.outbox.c.id, t.outbox.c.payload).where(t.outbox.c.sent_at.is_(None))
    statement = statement.order_by(t.outbox.c.id).limit(limit)
    if is_postgres:
        statement = statement.with_for_update(skip_locked=True)
    rows = [OutboxRow(id=row.id, payload=row.payload) for row in session.execute(statement)]
    if rows and is_postgres:
        older_held = session.execute(
            select(exists().where(t.outbox.c.sent_at.is_(None), t.outbox.c.id < rows[0].id))
        ).scalar_one()
        if older_held:
            return None
    return rows


def mark_sent(session: Session, ids: list[int], now: datetime) -> None:
    session.execute(update(t.outbox).where(t.outbox.c.id.in_(ids)).values(sent_at=now))


def delete_sent_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Forget published rows older than `cutoff` (they are in the stream now)."""
    ids = (
        session.execute(
            select(t.outbox.c.id)
            .where(t.outbox.c.sent_at.is_not(None), t.outbox.c.sent_at < cutoff)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if ids:
        session.execute(delete(t.outbox).where(t.outbox.c.id.in_(ids)))
    return len(ids)
