"""Payment events as payment's relay sends them (test data factories)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from switchyard.events.v1 import events_pb2
from switchyard.payment.v1 import events_pb2 as payment_events
from switchyard.payment.v1 import payment_pb2
from switchyard_kit.events import new_event


def _time(at: datetime | None) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at or datetime.now(UTC))
    return stamp


def paid(
    user_id: str, items: Mapping[str, int], payment_id: str | None = None, unit_amount: int = 100
) -> events_pb2.Event:
    lines = [
        payment_pb2.LineItem(sku=sku, quantity=quantity, unit_amount=unit_amount)
        for sku, quantity in items.items()
    ]
    payload = payment_events.PaymentSucceeded(
        payment_id=payment_id or str(uuid.uuid4()),
        user_id=user_id,
        merchant_id="merchant-1",
        amount=sum(line.quantity * line.unit_amount for line in lines),
        currency="EUR",
        items=lines,
        create_time=_time(None),
    )
    return new_event(payload, stream="payments", key=user_id)


def refunded(
    user_id: str, payment_id: str, refunded_amount: int, payment_amount: int
) -> events_pb2.Event:
    payload = payment_events.PaymentRefunded(
        refund_id=str(uuid.uuid4()),
        payment_id=payment_id,
        user_id=user_id,
        merchant_id="merchant-1",
        amount=refunded_amount,
        currency="EUR",
        refunded_amount=refunded_amount,
        payment_amount=payment_amount,
        fully_refunded=refunded_amount == payment_amount,
        create_time=_time(None),
    )
    return new_event(payload, stream="payments", key=user_id)


def poisoned(user_id: str) -> events_pb2.Event:
    """Says PaymentSucceeded but breaks the contract (quantity 0): never applicable."""
    payload = payment_events.PaymentSucceeded(
        payment_id=str(uuid.uuid4()),
        user_id=user_id,
        items=[payment_pb2.LineItem(sku="sku-x", quantity=0, unit_amount=1)],
        create_time=_time(None),
    )
    return new_event(payload, stream="payments", key=user_id)
