"""One request through the gateway is one trace: the Flask server span, the
gRPC client and server spans, and the service's SQL and Redis spans, joined by
the W3C trace context in gRPC metadata, exported over OTLP."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from faults.otlp import OtlpReceiver
from faults.platform import FaultPlatform, new_account, start_fault_platform, wait_for

SERVER, CLIENT = 2, 3  # OTLP SpanKind values


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def fp(
    tmp_path_factory: pytest.TempPathFactory,
    create_postgres_database: Callable[[str], str],
    redis_url: str,
    receiver: OtlpReceiver,
) -> Iterator[FaultPlatform]:
    running = start_fault_platform(
        tmp_path_factory.mktemp("tracing"),
        create_postgres_database,
        redis_url,
        env={
            # Only standard variables configure telemetry.
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        },
    )
    yield running
    running.stop()


def test_one_request_is_one_trace_from_http_to_sql(
    fp: FaultPlatform, receiver: OtlpReceiver
) -> None:
    with fp.client() as api:
        account = new_account(api)
        trace_id = secrets.token_hex(16)
        parent = secrets.token_hex(8)
        # A write: it reaches the database (a read might be a cache hit).
        response = api.patch(
            "/v1/profiles/me",
            json={"bio": "traced"},
            headers={**account.headers, "traceparent": f"00-{trace_id}-{parent}-01"},
        )
        assert response.status_code == 200

    def complete() -> bool:
        spans = receiver.trace(trace_id)
        services = {span.service for span in spans}
        return (
            {"switchyard-gateway", "switchyard-profile"} <= services
            and any(s.attributes.get("db.system") == "postgresql" for s in spans)
            and any(s.attributes.get("db.system") == "redis" for s in spans)
        )

    try:
        wait_for(complete, timeout=15, interval=0.2)
    except AssertionError:
        raise AssertionError(f"incomplete trace: {receiver.trace(trace_id)}") from None
    spans = receiver.trace(trace_id)
    by_id = {span.span_id: span for span in spans}
    flask = [s for s in spans if s.service == "switchyard-gateway" and s.kind == SERVER]
    assert [s.name for s in flask] == ["PATCH /v1/profiles/me"]
    assert flask[0].parent_span_id == parent
    grpc_client = [s for s in spans if s.service == "switchyard-gateway" and s.kind == CLIENT]
    grpc_server = [s for s in spans if s.service == "switchyard-profile" and s.kind == SERVER]
    assert grpc_client
    assert grpc_server
    client_ids = {s.span_id for s in grpc_client}
    assert all(s.parent_span_id in client_ids for s in grpc_server), spans
    sql = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    assert sql
    assert all(s.service == "switchyard-profile" for s in sql)
    redis_spans = [s for s in spans if s.attributes.get("db.system") == "redis"]
    assert any(s.service == "switchyard-profile" for s in redis_spans)  # cache invalidation
    # Every span's parent is in the same trace (the root's is the client's).
    for span in spans:
        assert span.parent_span_id == parent or span.parent_span_id in by_id, span
    # The launcher probed every service's health while starting: no spans for that.
    assert not [s for s in receiver.spans if "grpc.health." in s.name]
