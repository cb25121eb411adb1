"""The shared server bootstrap, on a real port with a real channel."""

import threading
from collections.abc import Iterator
from typing import ClassVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic_settings import SettingsConfigDict
from switchyard_kit import (
    LIVENESS_SERVICE,
    FieldViolation,
    GrpcService,
    InvalidArgument,
    RunningServer,
    ServiceSettings,
    status_details,
)

SERVICE = "switchyard.test.Example"


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"
    default_port: ClassVar[int] = 0
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore", frozen=True)


def _identity(data: bytes) -> bytes:
    return data


def _handlers(release: threading.Event) -> grpc.GenericRpcHandler:
    def invalid(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        raise InvalidArgument("invalid input", [FieldViolation("name", "required")])

    def crash(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        raise RuntimeError("database password is hunter2")

    def slow(request: bytes, _context: grpc.ServicerContext) -> bytes:
        release.wait(5)
        return request

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            name: grpc.unary_unary_rpc_method_handler(
                handler, request_deserializer=_identity, response_serializer=_identity
            )
            for name, handler in {"Invalid": invalid, "Crash": crash, "Slow": slow}.items()
        },
    )


class Harness:
    def __init__(self) -> None:
        self.ready = True
        self.release = threading.Event()
        settings = ExampleSettings(
            port=0, host="127.0.0.1", readiness_interval_seconds=0.05, grace_seconds=3
        )
        service = GrpcService(
            name="example",
            register=lambda server: server.add_generic_rpc_handlers((_handlers(self.release),)),
            service_names=[SERVICE],
            is_ready=lambda: self.ready,
        )
        self.server = RunningServer(service, settings)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")

    def call(self, method: str, timeout: float = 5) -> bytes:
        call = self.channel.unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_identity, response_deserializer=_identity
        )
        return call(b"ping", timeout=timeout)

    def health(self, service: str = "") -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.release.set()
    h.server.stop()
    h.channel.close()


def test_domain_errors_arrive_with_field_violations(harness: Harness) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        harness.call("Invalid")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_details(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad_request) for d in status.details)
    assert bad_request.field_violations[0].field == "name"


def test_unexpected_errors_are_internal_and_say_nothing(harness: Harness) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        harness.call("Crash")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (caught.value.details() or "")


def test_readiness_follows_the_dependency_but_liveness_does_not(harness: Harness) -> None:
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert harness.health() == serving
    assert harness.health(SERVICE) == serving
    harness.ready = False
    threading.Event().wait(0.3)
    assert harness.health() == not_serving
    assert harness.health(LIVENESS_SERVICE) == serving
    harness.ready = True
    threading.Event().wait(0.3)
    assert harness.health() == serving


def test_stop_reports_not_serving_and_lets_in_flight_calls_finish(harness: Harness) -> None:
    results: list[bytes] = []
    in_flight = threading.Thread(target=lambda: results.append(harness.call("Slow")))
    in_flight.start()
    threading.Event().wait(0.2)
    stopper = threading.Thread(target=harness.server.stop)
    stopper.start()
    threading.Event().wait(0.2)
    # New calls are refused while draining, so read the health servicer's own state.
    overall = harness.server.health._server_status[""]
    assert overall == health_pb2.HealthCheckResponse.NOT_SERVING
    harness.release.set()
    in_flight.join(5)
    stopper.join(5)
    assert results == [b"ping"]
