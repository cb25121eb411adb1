"""The transactional outbox: a producer's table of unsent events and the relay
that publishes them (shared by every producing service)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, exists, select, update
from sqlalchemy.orm import Session
from switchyard.events.v1 import events_pb2

from switchyard_kit._clock import utc_now
from switchyard_kit._database import Database
from switchyard_kit._liveness import Heartbeat, wait_beating
from switchyard_kit.events._publishers import EventPublisher, PublishError


@dataclass(frozen=True)
class OutboxRow:
    id: int
    payload: bytes


class SqlOutbox:
    """The relay's side of an outbox table: unsent rows in order, marked once published.

    The table needs an ascending integer `id`, `payload` (the serialized
    `switchyard.events.v1.Event`) and a nullable `sent_at`; producers insert
    rows in the transaction of the change they describe.

    Example::

        outbox = SqlOutbox(tables.outbox)
    """

    def __init__(self, table: Table) -> None:
        self.table = table

    def lock_head(self, session: Session, limit: int) -> list[OutboxRow] | None:
        """The oldest unsent rows, locked for this transaction.

        On PostgreSQL rows another relay holds are skipped (FOR UPDATE SKIP
        LOCKED); if that means an older unsent row is held by someone else,
        this relay stands by (None) rather than publish out of order. So two
        relays can run (one active, one hot standby) and per-key order holds.
        """
        table = self.table
        is_postgres = session.get_bind().dialect.name == "postgresql"
        statement = select(table.c.id, table.c.payload).where(table.c.sent_at.is_(None))
        statement = statement.order_by(table.c.id).limit(limit)
        if is_postgres:
            statement = statement.with_for_update(skip_locked=True)
        rows = [OutboxRow(id=row.id, payload=row.payload) for row in session.execute(statement)]
        if rows and is_postgres:
            older_held = session.execute(
                select(exists().where(table.c.sent_at.is_(None), table.c.id < rows[0].id))
            ).scalar_one()
            if older_held:
                return None
        return rows

    def mark_sent(self, session: Session, ids: list[int], now: datetime) -> None:
        session.execute(update(self.table).where(self.table.c.id.in_(ids)).values(sent_at=now))

    def delete_sent_before(self, session: Session, cutoff: datetime, limit: int) -> int:
        """Forget published rows older than `cutoff` (they are in the stream now)."""
        table = self.table
        ids = (
            session.execute(
                select(table.c.id)
                .where(table.c.sent_at.is_not(None), table.c.sent_at < cutoff)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if ids:
            session.execute(delete(table).where(table.c.id.in_(ids)))
        return len(ids)


class OutboxRelay:
    """Moves outbox rows to the event stream, oldest first, at least once.

    Each batch is published while its rows are locked; they are marked sent
    in the same transaction only after the publisher confirmed. A failure
    (Redis down, a sink unreachable) rolls back, so the same rows, in the
    same order, are tried again after a backoff: nothing is lost or
    reordered, and a crash between publish and commit only repeats events
    (consumers deduplicate on the event id).

    Example::

        relay = OutboxRelay(database, SqlOutbox(tables.outbox),
                            build_publisher(redis_url, sink_targets), name="auth.relay")
        relay.run(stop_event)
    """

    def __init__(
        self,
        database: Database,
        outbox: SqlOutbox,
        publisher: EventPublisher | None,
        *,
        batch_size: int = 100,
        poll_interval_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        retention_hours: float = 168.0,
        clock: Callable[[], datetime] = utc_now,
        name: str = "relay",
        no_publisher_hint: str = "REDIS_URL and the event sinks are empty",
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval_seconds
        self.max_backoff = max_backoff_seconds
        self.retention = timedelta(hours=retention_hours)
        self.clock = clock
        self.failures = 0
        self.logger = logging.getLogger(name)
        self._no_publisher_hint = no_publisher_hint
        self._told_no_publisher = False

    def relay_once(self) -> int:
        """Publish one batch; the number of events published (0: nothing to do).
        Raises PublishError when the publisher failed (nothing was marked)."""
        if self.publisher is None:
            if not self._told_no_publisher:
                self.logger.warning(
                    "no event publisher configured (%s): outbox rows stay unsent until one is",
                    self._no_publisher_hint,
                )
                self._told_no_publisher = True
            return 0
        with self.database.session() as session, session.begin():
            rows = self.outbox.lock_head(session, self.batch_size)
            if not rows:
                return 0
            events = [events_pb2.Event.FromString(row.payload) for row in rows]
            self.publisher.publish(events)
            self.outbox.mark_sent(session, [row.id for row in rows], self.clock())
        return len(rows)

    def purge_sent(self) -> int:
        """Delete published rows older than the retention period."""
        with self.database.session() as session, session.begin():
            return self.outbox.delete_sent_before(session, self.clock() - self.retention, 1000)

    def next_delay(self, published: int) -> float:
        if published:
            return 0.0
        if self.failures:
            return float(min(self.max_backoff, self.poll_interval * 2**self.failures))
        return self.poll_interval

    def step(self) -> float:
        """One iteration of the loop: how long to sleep before the next."""
        try:
            published = self.relay_once()
        except PublishError as exc:
            self.failures += 1
            if self.failures == 1:
                self.logger.warning(
                    "publishing failed; retrying with backoff", extra={"error": str(exc)}
                )
            return self.next_delay(0)
        except Exception:
            # A database outage: same treatment, the rows are still there.
            self.failures += 1
            self.logger.exception("relay iteration failed; retrying with backoff")
            return self.next_delay(0)
        if self.failures:
            self.logger.info("publishing recovered", extra={"failed_attempts": self.failures})
            self.failures = 0
        return self.next_delay(published)

    def run(
        self,
        stop: threading.Event,
        purge_every_seconds: float = 3600.0,
        *,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """Relay until `stop` is set; `heartbeat` beats on every turn of the loop
        (and while it backs off), never during a publish or a query."""
        self.logger.info("relay started")
        last_purge = time.monotonic()
        while not stop.is_set():
            if heartbeat is not None:
                heartbeat.beat()
            delay = self.step()
            if time.monotonic() - last_purge >= purge_every_seconds:
                last_purge = time.monotonic()
                try:
                    self.purge_sent()
                except Exception:
                    self.logger.exception("purging sent outbox rows failed")
            if delay:
                wait_beating(stop, delay, heartbeat)
        if self.publisher is not None:
            self.publisher.close()
        self.logger.info("relay stopped")
