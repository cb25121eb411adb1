"""A request breaking a rule of payment.proto is refused by the kit's
interceptor before the handler runs: nothing is written, not even the
idempotency key."""

from __future__ import annotations

import uuid

import grpc
import pytest
from payment_service.adapters import tables as t
from payment_service.service_layer.handlers import PaymentHandlers

from .test_api import _count


def test_a_zero_quantity_never_reaches_the_handler(client, database, user, rpc_error, monkeypatch):
    client.top_up(user, 1_000)
    written = {table.name: _count(database, table) for table in t.metadata.sorted_tables}
    original = PaymentHandlers.create_payment
    calls: list[object] = []

    def spy(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PaymentHandlers, "create_payment", spy)
    key = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as caught:
        client.pay(user, 500, items=[("sku-1", 0, 500)], key=key)
    code, _, fields = rpc_error(caught.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(fields) == ["items[0].quantity"]
    assert calls == []
    assert {table.name: _count(database, table) for table in t.metadata.sorted_tables} == written
    # The key was never claimed: a valid request may still use it.
    assert client.pay(user, 500, items=[("sku-1", 1, 500)], key=key).amount == 500
    assert len(calls) == 1
