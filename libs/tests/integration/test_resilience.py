"""Retries, load shedding, deadline propagation and database outages, through
a real server and the kit's own channel."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import ClassVar

import grpc
import pytest
from pydantic_settings import SettingsConfigDict
from sqlalchemy import exc as sa_exc
from switchyard.profile.v1 import profile_pb2
from switchyard_kit import Backend, GrpcService, RunningServer, ServiceSettings

PROFILE = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"]
IDEMPOTENT = "GetMyProfile"  # NO_SIDE_EFFECTS in profile.proto
NOT_IDEMPOTENT = "UpdateMyProfile"


class FakeSettings(ServiceSettings):
    service_name: ClassVar[str] = "fake"
    default_port: ClassVar[int] = 0
    model_config = SettingsConfigDict(env_prefix="FAKE_", extra="ignore", frozen=True)


def _identity(data: bytes) -> bytes:
    return data


class Fake:
    """A server under ProfileService's name whose handlers the tests choose."""

    def __init__(
        self, handlers: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]], **settings: int
    ) -> None:
        self.attempts: Counter[str] = Counter()
        generic = grpc.method_handlers_generic_handler(
            PROFILE.full_name,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    self._counted(name, handler),
                    request_deserializer=_identity,
                    response_serializer=_identity,
                )
                for name, handler in handlers.items()
            },
        )
        service = GrpcService(
            name="fake",
            register=lambda server: server.add_generic_rpc_handlers((generic,)),
            service_names=[PROFILE.full_name],
            is_ready=lambda: True,
        )
        self.server = RunningServer(
            service,
            FakeSettings(port=0, grace_seconds=0, **settings),  # type: ignore[arg-type]
        )
        self.server.start()
        self.backend = Backend("profile", f"127.0.0.1:{self.server.port}", PROFILE)

    def _counted(
        self, name: str, handler: Callable[[bytes, grpc.ServicerContext], bytes]
    ) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def counted(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.attempts[name] += 1
            return handler(request, context)

        return counted

    def call(self, method: str, timeout: float = 5) -> bytes:
        stub = self.backend.channel().unary_unary(
            f"/{PROFILE.full_name}/{method}",
            request_serializer=_identity,
            response_deserializer=_identity,
        )
        return stub(b"x", timeout=timeout)

    def close(self) -> None:
        self.backend.close()
        self.server.stop()


@pytest.fixture
def make_fake() -> Iterator[Callable[..., Fake]]:
    fakes: list[Fake] = []

    def make(
        handlers: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]], **settings: int
    ) -> Fake:
        fake = Fake(handlers, **settings)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


# UNAVAILABLE: no server took the call. CANCELLED: a stopping server dropped
# calls no worker had taken yet (the 499 a rolling restart used to show).
@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
def test_idempotent_calls_are_retried_when_not_served_and_others_are_not(
    make_fake: Callable[..., Fake], code: grpc.StatusCode
) -> None:
    failures: Counter[str] = Counter()

    def flaky(name: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def handler(request: bytes, context: grpc.ServicerContext) -> bytes:
            failures[name] += 1
            if failures[name] <= 2:
                context.abort(code, "try again")
            return b"ok"

        return handler

    fake = make_fake({IDEMPOTENT: flaky(IDEMPOTENT), NOT_IDEMPOTENT: flaky(NOT_IDEMPOTENT)})
    assert fake.call(IDEMPOTENT) == b"ok"
    assert fake.attempts[IDEMPOTENT] == 3
    with pytest.raises(grpc.RpcError) as caught:
        fake.call(NOT_IDEMPOTENT)
    assert caught.value.code() == code
    assert fake.attempts[NOT_IDEMPOTENT] == 1


def test_idempotent_calls_are_not_retried_on_other_codes(make_fake: Callable[..., Fake]) -> None:
    def internal(_request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.INTERNAL, "bug")
        raise AssertionError

    fake = make_fake({IDEMPOTENT: internal})
    with pytest.raises(grpc.RpcError):
        fake.call(IDEMPOTENT)
    assert fake.attempts[IDEMPOTENT] == 1


def test_calls_beyond_maximum_concurrent_rpcs_are_shed(make_fake: Callable[..., Fake]) -> None:
    inside, release = threading.Event(), threading.Event()

    def slow(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        inside.set()
        release.wait(5)
        return b"done"

    fake = make_fake({NOT_IDEMPOTENT: slow, IDEMPOTENT: slow}, max_concurrent_rpcs=1)
    results: list[bytes] = []
    first = threading.Thread(target=lambda: results.append(fake.call(NOT_IDEMPOTENT)))
    first.start()
    assert inside.wait(5)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            fake.call(NOT_IDEMPOTENT)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        release.set()
        first.join(5)
    assert results == [b"done"]


def test_an_outgoing_call_never_outlives_the_inbound_deadline(
    make_fake: Callable[..., Fake],
) -> None:
    seen: list[float] = []
    holder: dict[str, Fake] = {}

    def inner(_request: bytes, context: grpc.ServicerContext) -> bytes:
        remaining = context.time_remaining()
        seen.append(remaining if remaining is not None else float("inf"))
        return b"inner"

    def outer(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        # Asks for 30 s; the caller gave this RPC 1 s.
        return holder["fake"].call(IDEMPOTENT, timeout=30)

    fake = make_fake({IDEMPOTENT: inner, NOT_IDEMPOTENT: outer})
    holder["fake"] = fake
    assert fake.call(NOT_IDEMPOTENT, timeout=1) == b"inner"
    assert seen
    assert seen[0] <= 1.05  # not the 30 s asked for (the wire format rounds up)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # psycopg2 raises OperationalError without a SQLSTATE when it cannot connect.
        (
            sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
            grpc.StatusCode.UNAVAILABLE,
        ),
        (sa_exc.TimeoutError("QueuePool limit reached"), grpc.StatusCode.UNAVAILABLE),
        (sa_exc.IntegrityError("INSERT", {}, ValueError("duplicate")), grpc.StatusCode.INTERNAL),
    ],
)
def test_an_unreachable_database_is_unavailable_not_internal(
    make_fake: Callable[..., Fake], error: Exception, expected: grpc.StatusCode
) -> None:
    def failing(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        raise error

    fake = make_fake({NOT_IDEMPOTENT: failing})
    with pytest.raises(grpc.RpcError) as caught:
        fake.call(NOT_IDEMPOTENT)
    assert caught.value.code() == expected
