"""Events the recommendation service consumes: payment's succeeded payments and
refunds update the model.

The same handler runs behind both transports: `python -m recommendation_service
worker` (a Redis consumer group on stream "payments") and the EventSinkService
on the gRPC server (payment's relay delivers there when there is no Redis).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from switchyard.events.v1 import events_pb2
from switchyard_kit import Heartbeat
from switchyard_kit.events import EventConsumer

from recommendation_service.adapters.events import decode
from recommendation_service.service_layer.handlers import ModelUpdates

logger = logging.getLogger("recommendation")


def event_handler(updates: ModelUpdates) -> Callable[[events_pb2.Event], None]:
    """The handler both delivery paths run: decode, then apply once per event id.

    Event types this service does not learn from (top-ups) are acknowledged
    and ignored; a malformed event raises, so it is retried and then
    dead-lettered by the consumer.
    """

    def handle(event: events_pb2.Event) -> None:
        decoded = decode(event)
        if decoded is None:
            return
        outcome = updates.apply(event.id, decoded)
        logger.debug(
            "event applied" if outcome.applied else "duplicate event skipped",
            extra={"event_id": event.id, "event_type": event.type},
        )

    return handle


def run_worker(
    consumer: EventConsumer, stop: threading.Event, heartbeat: Heartbeat | None = None
) -> None:
    logger.info(
        "worker consuming",
        extra={"stream": consumer.stream, "group": consumer.group, "consumer": consumer.consumer},
    )
    try:
        consumer.run(stop, heartbeat=heartbeat)
    finally:
        consumer.close()
    logger.info("worker stopped")
