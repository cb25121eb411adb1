"""A request breaking a rule of auth.proto is refused by the kit's interceptor
before the use case runs."""

from __future__ import annotations

import grpc
import pytest
from auth_service.adapters.tables import users
from auth_service.service_layer.handlers import AuthService
from switchyard.auth.v1 import auth_pb2

from .test_auth_grpc import count, details


def test_a_signup_breaking_a_proto_rule_never_reaches_the_handler(auth_server, monkeypatch):
    calls: list[object] = []
    monkeypatch.setattr(AuthService, "sign_up", lambda *args, **kwargs: calls.append(args))
    request = auth_pb2.SignUpRequest(email="ann@example.com", password="x" * 257)
    with pytest.raises(grpc.RpcError) as caught:
        auth_server.stub.SignUp(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in details(caught.value)[1]] == ["password"]
    assert calls == []
    assert count(auth_server, users) == 0
