"""The event envelope: building it, naming streams, reading the payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from switchyard.events.v1 import events_pb2

EVENT_SINK_SERVICE = events_pb2.DESCRIPTOR.services_by_name["EventSinkService"].full_name

MessageT = TypeVar("MessageT", bound=Message)


def stream_name(stream: str) -> str:
    """The Redis stream that carries logical stream `stream`: "events.<stream>"."""
    return f"events.{stream}"


def dead_letter_stream_name(stream: str, group: str) -> str:
    """Where a consumer group parks the events it gave up on."""
    return f"events.{stream}.dead-letter.{group}"


def new_event(
    payload: Message,
    *,
    stream: str,
    key: str,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> events_pb2.Event:
    """Wrap `payload` in an envelope with a fresh UUID (or `event_id`).

    `type` is the payload's full proto name; `key` orders events within the
    stream (the same key is delivered in publish order).
    """
    packed = any_pb2.Any()
    packed.Pack(payload)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(occurred_at or datetime.now(UTC))
    return events_pb2.Event(
        id=event_id or str(uuid.uuid4()),
        type=payload.DESCRIPTOR.full_name,
        stream=stream,
        key=key,
        payload=packed,
        occurred_at=timestamp,
    )


def unpack_payload(event: events_pb2.Event, message_class: type[MessageT]) -> MessageT | None:
    """The payload as `message_class`, or None when the event carries another type."""
    if event.payload.TypeName() != message_class.DESCRIPTOR.full_name:
        return None
    message = message_class()
    event.payload.Unpack(message)
    return message
