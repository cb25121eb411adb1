"""Payment events (switchyard.payment.v1 in a switchyard.events.v1 envelope) ->
the domain's PurchaseRecorded / RefundRecorded."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from switchyard.events.v1 import events_pb2
from switchyard.payment.v1 import events_pb2 as payment_events
from switchyard_kit.events import unpack_payload

from recommendation_service.domain.events import (
    MalformedEvent,
    PurchaseRecorded,
    RefundRecorded,
    checked_id,
    checked_sku,
)

PAYMENT_SUCCEEDED = payment_events.PaymentSucceeded.DESCRIPTOR.full_name
PAYMENT_REFUNDED = payment_events.PaymentRefunded.DESCRIPTOR.full_name
MAX_QUANTITY = 1_000_000


def _time(event: events_pb2.Event, payload_time: datetime | None) -> datetime:
    if payload_time is not None:
        return payload_time
    if event.HasField("occurred_at"):
        return event.occurred_at.ToDatetime(tzinfo=UTC)
    raise MalformedEvent("the event has no time")


def decode(event: events_pb2.Event) -> PurchaseRecorded | RefundRecorded | None:
    """The domain event carried by `event`; None for a type this service ignores.

    Raises MalformedEvent when the payload is not what its type says or breaks
    the payment contract (such an event is retried, then dead-lettered).
    """
    if not event.id:
        raise MalformedEvent("the event has no id")
    payload_type = event.payload.TypeName()
    if payload_type not in (PAYMENT_SUCCEEDED, PAYMENT_REFUNDED):
        return None
    try:
        if payload_type == PAYMENT_SUCCEEDED:
            succeeded = unpack_payload(event, payment_events.PaymentSucceeded)
            return _purchase(event, succeeded) if succeeded is not None else None
        refunded = unpack_payload(event, payment_events.PaymentRefunded)
        return _refund(event, refunded) if refunded is not None else None
    except DecodeError as exc:
        raise MalformedEvent(f"unreadable {payload_type} payload") from exc


def _purchase(
    event: events_pb2.Event, message: payment_events.PaymentSucceeded
) -> PurchaseRecorded:
    quantities: dict[str, int] = defaultdict(int)
    for item in message.items:
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise MalformedEvent(f"quantity must be 1 to {MAX_QUANTITY}")
        quantities[checked_sku(item.sku)] += item.quantity
    created = (
        message.create_time.ToDatetime(tzinfo=UTC) if message.HasField("create_time") else None
    )
    return PurchaseRecorded(
        payment_id=checked_id("payment_id", message.payment_id),
        user_id=checked_id("user_id", message.user_id),
        occurred_at=_time(event, created),
        items=dict(quantities),
    )


def _refund(event: events_pb2.Event, message: payment_events.PaymentRefunded) -> RefundRecorded:
    if message.payment_amount <= 0 or not 0 < message.refunded_amount <= message.payment_amount:
        raise MalformedEvent("refunded_amount must be 1 to payment_amount")
    fraction = 1.0 if message.fully_refunded else message.refunded_amount / message.payment_amount
    created = (
        message.create_time.ToDatetime(tzinfo=UTC) if message.HasField("create_time") else None
    )
    return RefundRecorded(
        payment_id=checked_id("payment_id", message.payment_id),
        user_id=checked_id("user_id", message.user_id),
        occurred_at=_time(event, created),
        refunded_fraction=fraction,
    )
