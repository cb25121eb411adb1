"""Circuit breaker, bulkhead and the guard around one backend call."""

from __future__ import annotations

import threading

import grpc
import pytest
from gateway.problems import ApiError
from gateway.resilience import (
    BackendGuard,
    BreakerState,
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    CircuitOpen,
    ResilienceSettings,
)

from gateway import metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RpcFailure(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name


def _breaker(clock: Clock, **kwargs: float) -> CircuitBreaker:
    options = {"window": 10, "min_calls": 4, "failure_ratio": 0.5, "open_seconds": 5.0}
    options.update(kwargs)
    return CircuitBreaker("profile", clock=clock, half_open_probes=2, **options)  # type: ignore[arg-type]


def _calls(breaker: CircuitBreaker, outcomes: list[bool]) -> None:
    for failed in outcomes:
        breaker.record(breaker.acquire(), failed=failed)


def test_opens_at_the_failure_ratio_after_the_minimum_calls() -> None:
    breaker = _breaker(Clock())
    _calls(breaker, [True, True, True])
    assert breaker.state is BreakerState.CLOSED  # below min_calls
    _calls(breaker, [False])
    assert breaker.state is BreakerState.OPEN  # 3 of 4 failed, min_calls reached


def test_ratio_reached_opens_and_fails_fast_with_retry_after() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _calls(breaker, [False, True, False, True])
    assert breaker.state is BreakerState.OPEN
    clock.now += 2
    with pytest.raises(CircuitOpen) as raised:
        breaker.acquire()
    assert raised.value.retry_after == pytest.approx(3.0)


def test_stays_closed_below_the_ratio() -> None:
    breaker = _breaker(Clock())
    _calls(breaker, [False, False, True, False, False, False, True, False])
    assert breaker.state is BreakerState.CLOSED


def test_half_open_probes_close_it() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _calls(breaker, [True] * 4)
    clock.now += 5
    first, second = breaker.acquire(), breaker.acquire()
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # only two probes at a time
    breaker.record(first, failed=False)
    breaker.record(second, failed=False)
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_probe_opens_it_again() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _calls(breaker, [True] * 4)
    clock.now += 5
    breaker.record(breaker.acquire(), failed=True)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.acquire()


def test_late_outcomes_of_an_earlier_state_are_ignored() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    late = breaker.acquire()
    _calls(breaker, [True] * 4)
    clock.now += 5
    probe = breaker.acquire()
    breaker.record(late, failed=True)  # from before it opened: ignored
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(probe, failed=False)
    breaker.record(breaker.acquire(), failed=False)
    assert breaker.state is BreakerState.CLOSED


def test_a_released_probe_frees_its_slot() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _calls(breaker, [True] * 4)
    clock.now += 5
    first = breaker.acquire()
    breaker.acquire()
    breaker.release(first)
    breaker.acquire()


def test_bulkhead_bounds_calls_in_flight() -> None:
    bulkhead = Bulkhead("payment", limit=2)
    with bulkhead.slot(), bulkhead.slot():
        assert bulkhead.in_flight == 2
        with pytest.raises(BulkheadFull), bulkhead.slot():
            pass
    with bulkhead.slot():
        assert bulkhead.in_flight == 1


def _guard(**settings: float) -> BackendGuard:
    values = {"breaker_min_calls": 2, "breaker_window": 4, "bulkhead_max_in_flight": 1}
    values.update(settings)
    return BackendGuard("profile", ResilienceSettings(**values))  # type: ignore[arg-type]


def _fail(code: grpc.StatusCode) -> object:
    raise RpcFailure(code)


def test_guard_opens_on_unavailable_and_answers_503_with_retry_after() -> None:
    guard = _guard()
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            guard.call(lambda: _fail(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(ApiError) as raised:
        guard.call(lambda: "never called")
    assert raised.value.status == 503
    assert int(raised.value.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ],
)
def test_answers_that_are_not_outages_do_not_open_it(code: grpc.StatusCode) -> None:
    guard = _guard()
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            guard.call(lambda c=code: _fail(c))
    assert guard.breaker.state is BreakerState.CLOSED


def test_guard_sheds_a_call_beyond_the_bulkhead() -> None:
    guard = _guard(bulkhead_wait_ms=0)
    inside, release = threading.Event(), threading.Event()

    def slow() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    worker = threading.Thread(target=guard.call, args=(slow,))
    worker.start()
    inside.wait(5)
    try:
        with pytest.raises(ApiError) as raised:
            guard.call(lambda: "second")
        assert raised.value.status == 503
        assert raised.value.headers["Retry-After"] == "1"
    finally:
        release.set()
        worker.join()
    assert guard.call(lambda: "after") == "after"


def test_expensive_routes_have_their_own_bulkhead_and_share_the_breaker() -> None:
    # Issue 12: 36 parallel signups took every slot of auth's one bulkhead,
    # and another user's GET /v1/auth/sessions answered 503.
    from gateway.resilience import guard_for  # noqa: PLC0415 - beside the test it serves
    from switchyard.auth.v1 import auth_pb2  # noqa: PLC0415
    from switchyard_kit import Backend  # noqa: PLC0415

    auth = Backend("auth", "127.0.0.1:1", auth_pb2.DESCRIPTOR.services_by_name["AuthService"])
    cheap, expensive = guard_for(auth), guard_for(auth, expensive=True)
    assert cheap is guard_for(auth)
    assert expensive is guard_for(auth, expensive=True)
    assert cheap.bulkhead is not expensive.bulkhead
    assert cheap.breaker is expensive.breaker
    assert expensive.bulkhead.name == "auth:expensive"
    assert expensive.bulkhead.wait_seconds == 0

    inside, release = threading.Event(), threading.Event()
    held = 0

    def hold() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    workers = []
    try:
        # Fill the expensive bulkhead...
        for _ in range(expensive.bulkhead.limit):
            inside.clear()
            worker = threading.Thread(target=expensive.call, args=(hold,))
            worker.start()
            workers.append(worker)
            assert inside.wait(5)
            held += 1
        # ...the next expensive call is shed at once, a cheap one still runs.
        with pytest.raises(ApiError) as raised:
            expensive.call(lambda: "one more")
        assert raised.value.status == 503
        assert cheap.call(lambda: "sessions") == "sessions"
    finally:
        release.set()
        for worker in workers:
            worker.join()
    assert held == expensive.bulkhead.limit


def test_a_bulkhead_reports_its_limit_beside_its_calls_in_flight():
    # The dashboard's "in flight vs limit" panel reads both.
    bulkhead = Bulkhead("limit-test", 4)
    labels = {"backend": "limit-test"}
    assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight_limit", labels) == 4
    with bulkhead.slot():
        assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight", labels) == 1
