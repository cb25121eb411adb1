"""Circuit breaker, adaptive concurrency limit and the guard around one backend call."""

from __future__ import annotations

import threading

import grpc
import pytest
from gateway.problems import ApiError
from gateway.resilience import (
    BackendGuard,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    ConcurrencyLimiter,
    GradientLimit,
    LimitReached,
    QueueWait,
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


def _guard(**settings: float) -> BackendGuard:
    values = {
        "breaker_min_calls": 2,
        "breaker_window": 4,
        "concurrency_min": 1,
        "concurrency_initial": 1,
        "concurrency_max": 1,
    }
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


def test_guard_sheds_a_call_beyond_the_limit() -> None:
    guard = _guard(concurrency_queue_wait_ms=0, concurrency_queue_wait_rtts=0)
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


def test_expensive_routes_have_their_own_limit_and_share_the_breaker() -> None:
    # Issue 12: 36 parallel signups took every slot of auth's one bulkhead,
    # and another user's GET /v1/auth/sessions answered 503.
    from gateway.resilience import guard_for  # noqa: PLC0415 - beside the test it serves
    from switchyard.auth.v1 import auth_pb2  # noqa: PLC0415
    from switchyard_kit import Backend  # noqa: PLC0415

    auth = Backend("auth", "127.0.0.1:1", auth_pb2.DESCRIPTOR.services_by_name["AuthService"])
    cheap, expensive = guard_for(auth), guard_for(auth, expensive=True)
    assert cheap is guard_for(auth)
    assert expensive is guard_for(auth, expensive=True)
    assert cheap.limiter is not expensive.limiter
    assert cheap.breaker is expensive.breaker
    assert expensive.limiter.name == "auth:expensive"
    assert expensive.limiter.queue_wait is None  # sheds at once

    inside, release = threading.Event(), threading.Event()
    held = 0

    def hold() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    workers = []
    try:
        # Fill the expensive limit...
        for _ in range(expensive.limiter.limit):
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
    assert held == expensive.limiter.limit == 4


# The adaptive limit (issue 16): fixed bulkheads shed healthy load.


def _steady(limit: GradientLimit, rtt: float, samples: int) -> int:
    for _ in range(samples):
        limit.update(rtt, in_flight=limit.limit, dropped=False)
    return limit.limit


def test_the_limit_grows_while_latency_stays_at_its_baseline() -> None:
    limit = GradientLimit(initial=6, minimum=2, maximum=20)
    assert _steady(limit, 0.010, 10) > 6
    assert _steady(limit, 0.010, 200) == 20  # and stops at the maximum


def test_the_limit_stays_while_most_of_it_is_unused() -> None:
    limit = GradientLimit(initial=6, minimum=2, maximum=20)
    for _ in range(100):
        limit.update(0.010, in_flight=1, dropped=False)
    assert limit.limit == 6  # no growth: nothing says the backend takes more
    limit.update(0.100, in_flight=1, dropped=False)
    assert limit.limit == 6  # an outlier of an idle gateway's call: no cut either
    limit.update(0.100, in_flight=6, dropped=False)
    assert limit.limit < 6  # at full use it is queueing


def test_the_limit_shrinks_when_latency_doubles() -> None:
    limit = GradientLimit(initial=6, minimum=2, maximum=20)
    assert _steady(limit, 0.010, 200) == 20
    shrinking = [_steady(limit, 0.020, 5) for _ in range(4)]
    assert shrinking == sorted(shrinking, reverse=True)
    assert shrinking[-1] < 20
    assert limit.baseline_rtt() is not None
    assert limit.baseline_rtt() < 0.015


def test_a_slower_method_is_measured_against_its_own_baseline() -> None:
    """The payment backend in `make bench`: GetWallet at ~3 ms set the baseline,
    then CreatePayment at ~12 ms, steady, took the limit to its minimum."""
    limit = GradientLimit(initial=6, minimum=2, maximum=7)
    for _ in range(200):
        limit.update(0.003, in_flight=7, dropped=False, method="GetWallet")
    assert limit.limit == 7
    for _ in range(100):
        limit.update(0.012, in_flight=7, dropped=False, method="CreatePayment")
    assert limit.limit == 7
    assert limit.baseline_rtt("GetWallet") == pytest.approx(0.003)
    assert limit.baseline_rtt("CreatePayment") == pytest.approx(0.012)
    assert limit.recent_rtt == pytest.approx(0.012)  # the queue wait: any method's
    # Its own queueing still counts: CreatePayment at 3x its baseline shrinks it.
    for _ in range(20):
        limit.update(0.036, in_flight=7, dropped=False, method="CreatePayment")
    assert limit.limit < 7


def test_latency_within_the_tolerance_does_not_shrink_it() -> None:
    limit = GradientLimit(initial=6, minimum=2, maximum=20)
    _steady(limit, 0.010, 200)
    assert _steady(limit, 0.014, 20) == 20  # 1.4x the baseline: noise, not queueing


def test_drops_shrink_the_limit_down_to_the_minimum() -> None:
    limit = GradientLimit(initial=10, minimum=2, maximum=20)
    assert limit.update(2.0, in_flight=10, dropped=True) == 9
    for _ in range(50):
        limit.update(2.0, in_flight=10, dropped=True)
    assert limit.limit == 2
    # A drop's round trip is the deadline, not the backend's latency.
    assert limit.baseline_rtt() is None


def test_the_limit_starts_within_its_bounds() -> None:
    assert GradientLimit(initial=9, minimum=2, maximum=7).limit == 7
    assert GradientLimit(initial=1, minimum=2, maximum=7).limit == 2


def test_the_recent_round_trip_follows_latency_faster_than_the_baseline() -> None:
    limit = GradientLimit(initial=6, minimum=2, maximum=7)
    _steady(limit, 0.010, 100)
    _steady(limit, 0.040, 20)
    assert limit.recent_rtt is not None
    assert limit.baseline_rtt() is not None
    assert limit.recent_rtt > 0.035  # the queue wait: the latency calls have now
    assert limit.baseline_rtt() < 0.020  # the gradient: against the no-load latency


def test_the_queue_wait_follows_the_latency_within_its_bounds() -> None:
    wait = QueueWait(minimum=0.1, rtts=10, maximum=0.5)
    assert wait.seconds(None) == 0.1
    assert wait.seconds(0.002) == 0.1
    assert wait.seconds(0.03) == pytest.approx(0.3)
    assert wait.seconds(0.2) == 0.5


def _limiter(limit: int, queue_wait: QueueWait | None = None) -> ConcurrencyLimiter:
    return ConcurrencyLimiter(
        "limiter-test", GradientLimit(initial=limit, minimum=limit, maximum=limit), queue_wait
    )


def test_the_limiter_admits_up_to_the_limit_and_frees_on_release() -> None:
    limiter = _limiter(2)
    first, second = limiter.acquire(), limiter.acquire()
    assert limiter.in_flight == 2
    with pytest.raises(LimitReached):
        limiter.acquire()  # no queue wait: refused at once
    limiter.release(first, dropped=False)
    third = limiter.acquire()
    for slot in (second, third):
        limiter.release(slot, dropped=False)
    assert limiter.in_flight == 0


def test_a_call_over_the_limit_waits_then_is_refused() -> None:
    limiter = _limiter(1, QueueWait(minimum=0.05, rtts=0, maximum=0.05))
    held = limiter.acquire()
    with pytest.raises(LimitReached):
        limiter.acquire()  # waited its 50 ms, nobody released
    assert limiter.queued == 0
    limiter.release(held, dropped=False)
    limiter.release(limiter.acquire(), dropped=False)  # the refused waiter left no trace


def test_waiters_get_freed_slots_first_come_first_served() -> None:
    limiter = _limiter(1, QueueWait(minimum=10, rtts=0, maximum=10))
    held = limiter.acquire()
    order: list[str] = []
    waiters = []
    for name in ("first", "second"):

        def wait(name: str = name) -> None:
            slot = limiter.acquire()
            order.append(name)
            limiter.release(slot, dropped=False)

        queued = limiter.queued
        waiter = threading.Thread(target=wait)
        waiter.start()
        waiters.append(waiter)
        while limiter.queued == queued:  # in the queue before the next one comes
            threading.Event().wait(0.001)
    limiter.release(held, dropped=False)
    for waiter in waiters:
        waiter.join(10)
    assert order == ["first", "second"]
    assert limiter.in_flight == 0


def test_the_limiter_holds_its_limit_across_threads() -> None:
    limiter = _limiter(3, QueueWait(minimum=10, rtts=0, maximum=10))
    lock = threading.Lock()
    inside = 0
    most = 0
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal inside, most
        try:
            for _ in range(200):
                slot = limiter.acquire()
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1
                limiter.release(slot, dropped=False)
        except BaseException as error:  # reported by the assert below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors
    assert most <= 3
    assert limiter.in_flight == 0
    assert limiter.queued == 0


def test_guard_admit_and_complete_from_a_callback_thread() -> None:
    # The two-step form for futures: complete() may run on gRPC's callback thread.
    guard = _guard(concurrency_min=1, concurrency_initial=3, concurrency_max=3)
    tickets = [guard.admit() for _ in range(3)]
    assert guard.limiter.in_flight == 3
    done = [
        threading.Thread(target=guard.complete, args=(ticket, grpc.StatusCode.DEADLINE_EXCEEDED))
        for ticket in tickets
    ]
    for thread in done:
        thread.start()
    for thread in done:
        thread.join(5)
    assert guard.limiter.in_flight == 0
    assert guard.breaker.state is BreakerState.OPEN  # timeouts are the breaker's failures...
    assert guard.limiter.limit < 3  # ...and the limit's drops
    with pytest.raises(ApiError) as raised:
        guard.admit()
    assert raised.value.status == 503


def test_a_stuck_backend_holds_fewer_threads_than_a_worker_has() -> None:
    # Isolation: with the defaults, calls to a backend that never answers hold
    # at most GATEWAY_CONCURRENCY_MAX (7) of a worker's 8 threads; the others
    # are refused after their queue wait, and another backend still answers.
    settings = ResilienceSettings()
    assert settings.concurrency_max < 8  # GATEWAY_THREADS' default
    stuck = BackendGuard("stuck-test", settings)
    other = BackendGuard("other-test", settings)
    release = threading.Event()
    entered = threading.Semaphore(0)
    outcomes: list[str] = []

    def hang() -> str:
        entered.release()
        release.wait(10)
        return "late"

    def call() -> None:
        try:
            outcomes.append(stuck.call(hang))
        except ApiError as error:
            outcomes.append(str(error.status))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(settings.concurrency_initial):
            assert entered.acquire(timeout=5)
        for _ in range(500):  # the refused ones answer 503 meanwhile
            if len(outcomes) >= 8 - settings.concurrency_initial:
                break
            threading.Event().wait(0.01)
        assert stuck.limiter.in_flight <= settings.concurrency_max
        assert other.call(lambda: "answered") == "answered"
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    assert outcomes.count("503") == 8 - settings.concurrency_initial
    assert outcomes.count("late") == settings.concurrency_initial


def test_the_limit_gauge_reports_the_live_limit() -> None:
    # The dashboard's "in flight vs limit" panel reads both.
    limiter = ConcurrencyLimiter(
        "limit-test",
        GradientLimit(initial=4, minimum=1, maximum=8),
        on_limit=lambda name, value: metrics.BACKEND_IN_FLIGHT_LIMIT.labels(name).set(value),
    )
    labels = {"backend": "limit-test"}
    assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight_limit", labels) == 4
    limiter.release(limiter.acquire(), dropped=True)  # 4 x 0.9: 3
    assert limiter.limit == 3
    assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight_limit", labels) == 3


def test_a_guard_reports_its_limit_and_calls_in_flight() -> None:
    guard = BackendGuard("guard-limit-test", ResilienceSettings())
    labels = {"backend": "guard-limit-test"}
    assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight_limit", labels) == 6
    ticket = guard.admit()
    assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight", labels) == 1
    guard.complete(ticket, None)
    assert metrics.REGISTRY.get_sample_value("gateway_backend_in_flight", labels) == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"concurrency_min": 8}, "GATEWAY_CONCURRENCY_MIN"),
        ({"concurrency_expensive_initial": 9}, "GATEWAY_CONCURRENCY_EXPENSIVE_MIN"),
        ({"concurrency_queue_wait_ms": 900}, "GATEWAY_CONCURRENCY_QUEUE_WAIT_MAX_MS"),
    ],
)
def test_limits_out_of_order_fail_naming_the_setting(values: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResilienceSettings(**values)  # type: ignore[arg-type]
