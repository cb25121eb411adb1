"""The gateway's Idempotency-Key header check and payment's own check (for
gRPC callers that bypass the gateway) are one rule: switchyard_kit.idempotency."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, g
from gateway.calls import _metadata
from gateway.problems import ApiError
from payment_service.domain.idempotency import check_key
from switchyard_kit import IDEMPOTENCY_KEY, InvalidArgument

KEYS = [
    ("order-1234", True),
    ("a", True),
    ("x" * 255, True),
    ("~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"", True),
    ("", False),
    ("x" * 256, False),
    ("order 1234", False),
    ("tab\tkey", False),
    ("caf\u00e9", False),
    ("del\x7f", False),
]


def _gateway_accepts(key: str) -> bool:
    route: Any = SimpleNamespace(options=SimpleNamespace(idempotency_key_required=True))
    with Flask(__name__).test_request_context(headers={"Idempotency-Key": key}):
        g.request_id = "r1"
        try:
            metadata = _metadata(route, "user-1")
        except ApiError as error:
            status = error.status
        else:
            return (IDEMPOTENCY_KEY, key) in metadata
    assert status == 400
    return False


def _payment_accepts(key: str) -> bool:
    try:
        check_key(key)
    except InvalidArgument as error:
        fields = [violation.field for violation in error.violations]
    else:
        return True
    assert fields == ["Idempotency-Key"]
    return False


@pytest.mark.parametrize(("key", "valid"), KEYS)
def test_the_gateway_and_payment_accept_and_refuse_the_same_keys(key: str, valid: bool) -> None:
    assert _gateway_accepts(key) is valid
    assert _payment_accepts(key) is valid
