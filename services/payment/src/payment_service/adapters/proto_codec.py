"""Domain objects <-> protobuf messages (API responses and event payloads)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from switchyard.events.v1 import events_pb2
from switchyard.payment.v1 import events_pb2 as payment_events_pb2
from switchyard.payment.v1 import payment_pb2
from switchyard_kit.events import new_event

from payment_service.domain.model import (
    DomainEvent,
    LineItem,
    Payment,
    PaymentStatus,
    PaymentSucceeded,
    Refund,
    TopUp,
    WalletToppedUp,
)

# The stream payment events go on unless PAYMENT_EVENTS_STREAM names another.
STREAM = "payments"

_STATUS = {
    PaymentStatus.PENDING: payment_pb2.PAYMENT_STATUS_PENDING,
    PaymentStatus.SUCCEEDED: payment_pb2.PAYMENT_STATUS_SUCCEEDED,
    PaymentStatus.FAILED: payment_pb2.PAYMENT_STATUS_FAILED,
    PaymentStatus.PARTIALLY_REFUNDED: payment_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED: payment_pb2.PAYMENT_STATUS_REFUNDED,
}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result


def items_to_proto(items: Iterable[LineItem]) -> list[payment_pb2.LineItem]:
    return [
        payment_pb2.LineItem(sku=i.sku, quantity=i.quantity, unit_amount=i.unit_amount)
        for i in items
    ]


def items_from_proto(items: Iterable[payment_pb2.LineItem]) -> tuple[LineItem, ...]:
    return tuple(LineItem(i.sku, i.quantity, i.unit_amount) for i in items)


def payment_to_proto(payment: Payment) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        id=payment.id,
        user_id=payment.user_id,
        merchant_id=payment.merchant_id,
        amount=payment.amount,
        currency=payment.currency,
        items=items_to_proto(payment.items),
        description=payment.description,
        status=_STATUS[payment.status],
        failure_reason=payment.failure_reason,
        refunded_amount=payment.refunded_amount,
        create_time=timestamp(payment.created_at),
        update_time=timestamp(payment.updated_at),
    )


def refund_to_proto(refund: Refund) -> payment_pb2.Refund:
    return payment_pb2.Refund(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        currency=refund.currency,
        create_time=timestamp(refund.created_at),
    )


def top_up_to_proto(top_up: TopUp) -> payment_pb2.TopUp:
    return payment_pb2.TopUp(
        id=top_up.id,
        amount=top_up.amount,
        currency=top_up.currency,
        balance=top_up.balance,
        create_time=timestamp(top_up.created_at),
    )


def event_to_envelope(event: DomainEvent, stream: str = STREAM) -> tuple[str, events_pb2.Event]:
    """The envelope of a domain event on `stream`, and the id of what it is about."""
    if isinstance(event, WalletToppedUp):
        top_up = event.top_up
        payload: Message = payment_events_pb2.WalletToppedUp(
            top_up_id=top_up.id,
            user_id=top_up.user_id,
            amount=top_up.amount,
            currency=top_up.currency,
            create_time=timestamp(top_up.created_at),
        )
        subject, key, when = top_up.id, top_up.user_id, top_up.created_at
    elif isinstance(event, PaymentSucceeded):
        payment = event.payment
        payload = payment_events_pb2.PaymentSucceeded(
            payment_id=payment.id,
            user_id=payment.user_id,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            currency=payment.currency,
            items=items_to_proto(payment.items),
            description=payment.description,
            create_time=timestamp(payment.created_at),
        )
        subject, key, when = payment.id, payment.user_id, payment.updated_at
    else:
        refund, payment = event.refund, event.payment
        payload = payment_events_pb2.PaymentRefunded(
            refund_id=refund.id,
            payment_id=payment.id,
            user_id=payment.user_id,
            merchant_id=payment.merchant_id,
            amount=refund.amount,
            currency=refund.currency,
            refunded_amount=payment.refunded_amount,
            payment_amount=payment.amount,
            fully_refunded=payment.status is PaymentStatus.REFUNDED,
            items=items_to_proto(payment.items),
            create_time=timestamp(refund.created_at),
        )
        subject, key, when = refund.id, payment.user_id, refund.created_at
    envelope = new_event(payload, stream=stream, key=key, occurred_at=when)
    return subject, envelope
