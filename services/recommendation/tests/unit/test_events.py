"""Payment events -> domain events: what breaks the payment contract is never learned."""

from __future__ import annotations

import uuid

import pytest
from recommendation_service.adapters.events import decode
from recommendation_service.domain.events import MalformedEvent, PurchaseRecorded
from switchyard.events.v1 import events_pb2
from switchyard.payment.v1 import events_pb2 as payment_events
from switchyard.payment.v1 import payment_pb2


def succeeded(sku: str, quantity: int = 1) -> events_pb2.Event:
    payload = payment_events.PaymentSucceeded(
        payment_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        items=[payment_pb2.LineItem(sku=sku, quantity=quantity, unit_amount=100)],
    )
    event = events_pb2.Event(id=str(uuid.uuid4()))
    event.payload.Pack(payload)
    event.occurred_at.GetCurrentTime()
    return event


def test_a_valid_sku_is_learned() -> None:
    decoded = decode(succeeded("tea.earl_grey-250g", 3))
    assert isinstance(decoded, PurchaseRecorded)
    assert decoded.items == {"tea.earl_grey-250g": 3}


@pytest.mark.parametrize("sku", ["<svg onload=alert(1)>", "sku\n", "", "x" * 65, "a b"])
def test_a_bad_sku_is_a_malformed_event(sku: str) -> None:
    # Malformed events are retried, then dead-lettered: never applied.
    with pytest.raises(MalformedEvent):
        decode(succeeded(sku))
