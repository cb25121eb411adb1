"""The outbox relay: publishes committed payment events in order and marks them sent.

The loop is the kit's `switchyard_kit.events.OutboxRelay`; this module binds
it to the payment outbox table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from switchyard_kit import Database, utc_now
from switchyard_kit.events import EventPublisher
from switchyard_kit.events import OutboxRelay as KitOutboxRelay

from payment_service.adapters.outbox import PAYMENT_OUTBOX


class OutboxRelay(KitOutboxRelay):
    """The kit's relay over the payment outbox (see `switchyard_kit.events.OutboxRelay`)."""

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
        super().__init__(
            database,
            PAYMENT_OUTBOX,
            publisher,
            batch_size=batch_size,
            poll_interval_seconds=poll_interval_seconds,
            max_backoff_seconds=max_backoff_seconds,
            retention_hours=retention_hours,
            clock=clock,
            name="payment.relay",
            no_publisher_hint="REDIS_URL and PAYMENT_EVENT_SINKS are empty",
        )
