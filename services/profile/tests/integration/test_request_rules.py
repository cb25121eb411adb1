"""A request breaking a rule of profile.proto is refused by the kit's
interceptor before the handler runs."""

from __future__ import annotations

import grpc
import pytest
from profile_service.service_layer.handlers import ProfileHandlers
from switchyard.profile.v1 import profile_pb2

from .conftest import Server
from .test_profile_api import field_violations


def test_a_bad_user_id_never_reaches_the_handler(
    server: Server, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(
        ProfileHandlers, "get_public_profile", lambda *args, **kwargs: calls.append(args)
    )
    request = profile_pb2.GetPublicProfileRequest(user_id="not-a-uuid")
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.GetPublicProfile(request, metadata=server.caller(user_id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(caught.value)] == ["user_id"]
    assert calls == []
