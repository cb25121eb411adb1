"""Asynchronous events between services: the envelope, publishers and consumers.

Producers wrap a versioned protobuf payload in a `switchyard.events.v1.Event`
(`new_event`) and hand batches to an `EventPublisher`: `RedisStreamPublisher`
(XADD to stream `events.<stream>`) when REDIS_URL is set, or
`GrpcSinkPublisher` (calls `EventSinkService/Deliver` on each consuming
service) on the broker-less path. Delivery is at least once on both, so every
consumer deduplicates on `Event.id`.

Consumers write one handler, `Callable[[Event], None]`, and run it either from
an `EventConsumer` (a Redis consumer group: XREADGROUP, XACK, XAUTOCLAIM of
stale entries, dead-letter after N deliveries) or behind an
`EventSinkServicer` (the gRPC delivery endpoint). A handler that raises means
"not handled": the event comes again later.

Producers write events to an outbox table in the transaction of the change
and run an `OutboxRelay` over it (`SqlOutbox(table)`), which publishes them
in order, at least once.

Example::

    from switchyard_kit.events import EventConsumer, build_publisher, new_event

    publisher = build_publisher(redis_url, sink_targets=[])
    publisher.publish([new_event(PaymentSucceeded(...), stream="payments", key=user_id)])

    consumer = EventConsumer(redis_url, "payments", group="recommendation",
                             consumer="rec-1", handler=handle)
    consumer.run(stop_event)
"""

from switchyard_kit.events._consumer import (
    DeadLetterHandler,
    EventConsumer,
    EventHandler,
    EventSinkServicer,
)
from switchyard_kit.events._dead_letters import DeadLetter, DeadLetters, dead_letters_command
from switchyard_kit.events._envelope import (
    EVENT_SINK_SERVICE,
    dead_letter_stream_name,
    new_event,
    stream_name,
    unpack_payload,
)
from switchyard_kit.events._outbox import OutboxRelay, OutboxRow, SqlOutbox
from switchyard_kit.events._publishers import (
    EventPublisher,
    GrpcSinkPublisher,
    PublishError,
    RedisStreamPublisher,
    build_publisher,
)

__all__ = [
    "EVENT_SINK_SERVICE",
    "DeadLetter",
    "DeadLetterHandler",
    "DeadLetters",
    "EventConsumer",
    "EventHandler",
    "EventPublisher",
    "EventSinkServicer",
    "GrpcSinkPublisher",
    "OutboxRelay",
    "OutboxRow",
    "PublishError",
    "RedisStreamPublisher",
    "SqlOutbox",
    "build_publisher",
    "dead_letter_stream_name",
    "dead_letters_command",
    "new_event",
    "stream_name",
    "unpack_payload",
]
