"""The cleanup-processed-events job: how long deduplication and dead letters are kept.

A processed event id only guards against a redelivery of that event; the
model counts each payment once by its id and applies refunds by their
cumulative fraction (handlers.ModelUpdates), so a redelivery after its id
was forgotten still changes nothing. The ids are kept
`processed_event_days` anyway, so the common case stays a cheap key lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from switchyard_kit import utc_now

from recommendation_service.service_layer.ports import RetentionStore


@dataclass(frozen=True)
class EventRetention:
    processed_event_days: float = 30.0
    dead_letter_days: float = 30.0


def forget_old_events(
    store: RetentionStore, retention: EventRetention, clock: Callable[[], datetime] = utc_now
) -> tuple[int, int]:
    """(processed event ids, dead letters) deleted, each bounded per run by the store."""
    now = clock()
    processed = store.forget_processed_events_before(
        now - timedelta(days=retention.processed_event_days)
    )
    dead = store.forget_dead_letters_before(now - timedelta(days=retention.dead_letter_days))
    return processed, dead
