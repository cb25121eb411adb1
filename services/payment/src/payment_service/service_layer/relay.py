"""The outbox relay: publishes committed events in order and marks them sent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from switchyard.events.v1 import events_pb2
from switchyard_kit import Database
from switchyard_kit.events import EventPublisher, PublishError

from payment_service.adapters import outbox
from payment_service.service_layer.handlers import utc_now

logger = logging.getLogger("payment.relay")


class OutboxRelay:
    """Moves outbox rows to the event stream, oldest first, at least once.

    Each batch is published while its rows are locked; they are marked sent
    in the same transaction only after the publisher confirmed. A failure
    (Redis down, a sink unreachable) rolls back, so the same rows, in the
    same order, are tried again after a backoff: nothing is lost or
    reordered, and a crash between publish and commit only repeats events
    (consumers deduplicate on the event id).
    """

    def __init__(
        self,
        database: Database,
        publisher: EventPublisher | None,
        *,
        batch_size: int = 100,
        poll_interval_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        retention_hours: float = 168.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval_seconds
        self.max_backoff = max_backoff_seconds
        self.retention = timedelta(hours=retention_hours)
        self.clock = clock
        self.failures = 0
        self._told_no_publisher = False

    def relay_once(self) -> int:
        """Publish one batch; the number of events published (0: nothing to do).
        Raises PublishError when the publisher failed (nothing was marked)."""
        if self.publisher is None:
            if not self._told_no_publisher:
                logger.warning(
                    "no event publisher configured (REDIS_URL and PAYMENT_EVENT_SINKS are "
                    "empty): outbox rows stay unsent until one is"
                )
                self._told_no_publisher = True
            return 0
        with self.database.session() as session, session.begin():
            rows = outbox.lock_head(session, self.batch_size)
            if not rows:
                return 0
            events = [events_pb2.Event.FromString(row.payload) for row in rows]
            self.publisher.publish(events)
            outbox.mark_sent(session, [row.id for row in rows], self.clock())
        return len(rows)

    def purge_sent(self) -> int:
        """Delete published rows older than the retention period."""
        with self.database.session() as session, session.begin():
            return outbox.delete_sent_before(session, self.clock() - self.retention, 1000)

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
                logger.warning(
                    "publishing failed; retrying with backoff", extra={"error": str(exc)}
                )
            return self.next_delay(0)
        except Exception:
            # A database outage: same treatment, the rows are still there.
            self.failures += 1
            logger.exception("relay iteration failed; retrying with backoff")
            return self.next_delay(0)
        if self.failures:
            logger.info("publishing recovered", extra={"failed_attempts": self.failures})
            self.failures = 0
        return self.next_delay(published)

    def run(self, stop: threading.Event, purge_every_seconds: float = 3600.0) -> None:
        """Relay until `stop` is set."""
        logger.info("relay started")
        last_purge = time.monotonic()
        while not stop.is_set():
            delay = self.step()
            if time.monotonic() - last_purge >= purge_every_seconds:
                last_purge = time.monotonic()
                try:
                    self.purge_sent()
                except Exception:
                    logger.exception("purging sent outbox rows failed")
            if delay:
                stop.wait(delay)
        if self.publisher is not None:
            self.publisher.close()
        logger.info("relay stopped")
