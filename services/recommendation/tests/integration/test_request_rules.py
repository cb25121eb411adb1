"""A request breaking a rule of recommendation.proto is refused by the kit's
interceptor before the query runs."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from recommendation_service.config import RecommendationSettings
from recommendation_service.entrypoints.app import grpc_service
from recommendation_service.service_layer.handlers import RecommendationQueries
from switchyard_kit import Database, InProcessCache, RunningServer, status_details

from .test_grpc import Client, fresh


def test_a_limit_over_100_never_reaches_the_query(
    database: Database, settings: RecommendationSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(
        RecommendationQueries, "recommend", lambda *args, **kwargs: calls.append(args)
    )
    server = RunningServer(grpc_service(database, settings, cache=InProcessCache("rec")), settings)
    server.start()
    client = Client(f"127.0.0.1:{server.port}")
    try:
        with pytest.raises(grpc.RpcError) as caught:
            client.get(fresh("ann"), limit=101)
    finally:
        client.channel.close()
        server.stop()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_details(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert [v.field for v in bad_request.field_violations] == ["limit"]
    assert calls == []
