"""Issue 16: the fixed bulkheads shed healthy load.

A burst of concurrent calls against a healthy backend with a small, fixed
service time: the old bulkhead (6 calls in flight, 100 ms of waiting for a
slot) answered part of it 503, the adaptive limit serves all of it (its queue
wait follows the backend's latency). A real gRPC server stands in for the
backend: the health service, answering after 40 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from gateway.problems import ApiError
from gateway.resilience import BackendGuard, ResilienceSettings
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_SECONDS = 0.040
FAST_SECONDS = 0.002
# The bench's connection count; the old bulkhead admits 6 per 40 ms, so in its
# 100 ms of waiting at most 18 of these could get a slot.
BURST = 32


class SlowHealth(health_pb2_grpc.HealthServicer):
    """A healthy backend: every call takes SERVICE_SECONDS, however many run
    (FAST_SECONDS for the service "fast": a cheaper method of the same backend)."""

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        time.sleep(FAST_SECONDS if request.service == "fast" else SERVICE_SECONDS)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def health() -> Iterator[health_pb2_grpc.HealthStub]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=BURST + 4))
    health_pb2_grpc.add_HealthServicer_to_server(SlowHealth(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield health_pb2_grpc.HealthStub(channel)
    finally:
        channel.close()
        server.stop(0)


def _burst(guard: BackendGuard, stub: health_pb2_grpc.HealthStub) -> list[int]:
    """The statuses of BURST calls started at once through `guard`, after a
    few calls one at a time (the backend's latency is known, as in a running
    gateway)."""
    request = health_pb2.HealthCheckRequest()
    for _ in range(10):
        guard.call(lambda: stub.Check(request, timeout=10))
    start = threading.Barrier(BURST)
    statuses: list[int] = []

    def one() -> None:
        start.wait(10)
        try:
            guard.call(lambda: stub.Check(request, timeout=10))
            statuses.append(200)
        except ApiError as error:
            statuses.append(error.status)

    callers = [threading.Thread(target=one) for _ in range(BURST)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    assert len(statuses) == BURST
    return statuses


def test_a_burst_against_a_healthy_backend_is_served_not_shed(
    health: health_pb2_grpc.HealthStub,
) -> None:
    guard = BackendGuard("burst-adaptive", ResilienceSettings())  # the defaults
    statuses = _burst(guard, health)
    assert statuses.count(503) == 0, statuses
    assert guard.limiter.in_flight == 0


def test_a_slower_method_after_a_fast_one_keeps_the_limit(
    health: health_pb2_grpc.HealthStub,
) -> None:
    """A worker's 8 threads call the slow method in a loop after the fast one
    set the backend's latency (as CreatePayment after GetWallet): the slow
    calls are not taken for queueing, so the limit stays at its maximum and
    the calls run 7 at a time, not 2."""
    guard = BackendGuard("mixed-methods", ResilienceSettings())
    fast, slow = health_pb2.HealthCheckRequest(service="fast"), health_pb2.HealthCheckRequest()
    stop = threading.Event()
    statuses: list[int] = []
    peak: list[int] = [0]

    def loop(request: Any, method: str) -> None:
        while not stop.is_set():
            try:
                guard.call(lambda: health.Check(request, timeout=10), method)
                statuses.append(200)
            except ApiError as error:
                statuses.append(error.status)
            peak[0] = max(peak[0], guard.limiter.in_flight)

    for request, method, seconds in ((fast, "Fast", 1.0), (slow, "Slow", 2.0)):
        stop.clear()
        callers = [threading.Thread(target=loop, args=(request, method)) for _ in range(8)]
        for caller in callers:
            caller.start()
        time.sleep(seconds)
        stop.set()
        for caller in callers:
            caller.join(30)
        assert guard.limiter.limit == 7, method
    assert statuses.count(503) == 0
    assert peak[0] == 7


def test_the_old_fixed_bulkhead_shed_the_same_burst(health: health_pb2_grpc.HealthStub) -> None:
    # The old behaviour, as settings: a limit fixed at 6, 100 ms of waiting.
    fixed = ResilienceSettings(
        concurrency_min=6,
        concurrency_initial=6,
        concurrency_max=6,
        concurrency_queue_wait_ms=100,
        concurrency_queue_wait_max_ms=100,
    )
    statuses = _burst(BackendGuard("burst-fixed", fixed), health)
    assert statuses.count(503) > 0, statuses


def test_a_call_issued_as_a_future_completes_on_the_callback_thread(
    health: health_pb2_grpc.HealthStub,
) -> None:
    guard = BackendGuard("future-test", ResilienceSettings())
    completed = threading.Semaphore(0)
    request = health_pb2.HealthCheckRequest()

    def done(ticket: Any) -> Any:
        def callback(future: grpc.Future) -> None:
            guard.complete(ticket, future.code())
            completed.release()

        return callback

    calls = []
    for _ in range(4):
        ticket = guard.admit()
        future = health.Check.future(request, timeout=10)
        future.add_done_callback(done(ticket))
        calls.append(future)
    assert guard.limiter.in_flight == 4
    for future in calls:
        assert future.result().status == health_pb2.HealthCheckResponse.SERVING
    for _ in calls:
        assert completed.acquire(timeout=10)
    assert guard.limiter.in_flight == 0
