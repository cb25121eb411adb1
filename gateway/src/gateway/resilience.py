"""Per-backend circuit breakers and adaptive concurrency limits in the gateway.

Why: the gateway used to bound each backend with a fixed bulkhead (6 calls in
flight per backend and worker, 100 ms of waiting for a slot, then 503). A
fixed bound is wrong both ways. Against a healthy backend it shed load that a
few more milliseconds of waiting would have served (`make bench`, 32
connections: 12% of payments and many recommendation and /v1/me calls were
503s), and it could not lower its bound for a backend that slows down.
Issue #16.

What: each backend (and route class, below) has a concurrency limit that
follows the backend's measured latency, from the gradient family of TCP
congestion control as in Netflix's concurrency-limits (Gradient2Limit, with
VegasLimit's reaction to drops), see `GradientLimit`:

- a no-load baseline latency is a long average of successful calls' round
  trips, one per method (a backend's writes are slower than its reads
  without any queueing); each call's round trip is compared with its
  method's;
- while calls use at least half the limit (else the limit stays) and take
  at most `tolerance` (1.5x) the baseline, the limit grows (a slot's worth
  every 5 calls);
- when they take longer (the backend is queueing), the limit shrinks in
  proportion to how much longer, by up to a tenth per call;
- a call that fails with UNAVAILABLE or DEADLINE_EXCEEDED (dropped: the
  backend is gone or stuck) cuts the limit by 10% at once;
- the limit stays within GATEWAY_CONCURRENCY_MIN .. GATEWAY_CONCURRENCY_MAX.

A call over the limit waits for a slot, first come first served, but only so
long: its queue deadline is ten of the backend's recent round trips (the
average of about its last 10 successful calls;
GATEWAY_CONCURRENCY_QUEUE_WAIT_RTTS), at least
GATEWAY_CONCURRENCY_QUEUE_WAIT_MS and at most
GATEWAY_CONCURRENCY_QUEUE_WAIT_MAX_MS; then it fails as 503 "saturated" with
Retry-After: 1, as before. Waiting in proportion to the backend's own latency
(as CoDel sets its target from the path's round trip) is what serves a burst
against a slower healthy backend, while a stuck backend whose last answers
took under 25 ms sheds its waiters within 250 ms.

Isolation is kept: the limit never exceeds GATEWAY_CONCURRENCY_MAX (7),
below the worker's GATEWAY_THREADS (8), so a slow or stuck backend holds at
most 7 of a worker's threads in calls; a thread waiting for one of its slots
leaves within its queue deadline, and the backend's timeouts shrink its
limit further until the breaker opens.

Route classes: the RPCs whose proto marks them `expensive` (signup, login,
refresh: a password hash or more each) have a second limiter of the same
backend (GATEWAY_CONCURRENCY_EXPENSIVE_*, at most 4 per worker) that sheds
at once (no wait) when full. Before classes, 36 parallel signups took every
slot of auth's one bulkhead and another user's GET /v1/auth/sessions
answered 503; a burst of expensive calls now fills only its own limit. The
breaker stays one per backend: a backend that is down is down for both
classes. The breaker is unchanged: a count window of outcomes that opens at a
failure ratio (below).

A breaker watches the outcomes of the last calls to one backend (a count
window). Once at least `min_calls` are in the window and the share of
failures (UNAVAILABLE or DEADLINE_EXCEEDED: the backend is gone or stuck)
reaches `failure_ratio`, it opens: calls fail at once as 503 with
Retry-After, without touching the network. After `open_seconds` it lets
`half_open_probes` calls through; if they all succeed it closes, if one
fails it opens again.

Each gunicorn worker has its own breakers and limits (no shared state
between processes); /metrics shows each backend's worst breaker state and
the sum of the workers' live limits (gateway_backend_in_flight_limit).

Settings (GATEWAY_BREAKER_*, GATEWAY_CONCURRENCY_*) are read once per process.
"""

from __future__ import annotations

import enum
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self, TypeVar

import grpc
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from switchyard_kit import Backend, load_settings

from gateway import metrics
from gateway.problems import ApiError

T = TypeVar("T")

# Codes that say the backend is down or stuck, as opposed to "your request is wrong".
BREAKER_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class ResilienceSettings(BaseSettings):
    """Breaker and concurrency limits, the same for every backend.

    Example::

        GATEWAY_BREAKER_OPEN_SECONDS=10 GATEWAY_CONCURRENCY_MAX=5 python -m gateway
    """

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    breaker_window: int = Field(default=20, ge=1)
    breaker_min_calls: int = Field(default=6, ge=1)
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_open_seconds: float = Field(default=5.0, gt=0)
    breaker_half_open_probes: int = Field(default=2, ge=1)
    # The adaptive limit of calls in flight per backend and worker, ordinary
    # routes. MAX 7 = GATEWAY_THREADS (8) - 1: one backend, however slow, never
    # holds every thread of a worker, so the other backends' routes keep one;
    # a higher limit could not be used anyway (a worker has no more threads to
    # call with, /v1/me's fan-out aside). Keep it below GATEWAY_THREADS if you
    # change that. INITIAL 6: the old fixed bulkhead, a proven start before any
    # latency is measured. MIN 2: a slow but working backend keeps two calls
    # going (one would put every request behind the slowest), enough to see
    # its latency recover.
    concurrency_initial: int = Field(default=6, ge=1)
    concurrency_min: int = Field(default=2, ge=1)
    concurrency_max: int = Field(default=7, ge=1)
    # A call over the limit waits for a slot at most QUEUE_WAIT_RTTS of the
    # backend's recent round trips, clamped to QUEUE_WAIT_MS ..
    # QUEUE_WAIT_MAX_MS. A worker has at most GATEWAY_THREADS - limit waiters
    # per backend (6 at the minimum limit of 2): a wait of ceil(6 / 2) = 3
    # round trips; 10 leaves room for latency noise. 250 ms: what a fast
    # backend's burst needs on a loaded machine (with 100 ms, the old
    # bulkhead's wait, a few calls of 5,000 at 32 connections were still
    # refused while all 7 calls in flight hit a ~100 ms p99 stall: quick
    # `make bench`, scenarios 4 and 5), and all a stuck backend (its last
    # answers from before it stuck) holds a waiting thread.
    # 500 ms: GATEWAY_MAX_QUEUE_WAIT_MS, the longest a request waits for a
    # thread; it should not wait longer for a backend.
    concurrency_queue_wait_ms: int = Field(default=250, ge=0)
    concurrency_queue_wait_rtts: float = Field(default=10.0, ge=0)
    concurrency_queue_wait_max_ms: int = Field(default=500, ge=0)
    # Expensive routes (proto option `expensive`): their own limit, which
    # does not queue: a burst beyond it is shed at once as 503, so it holds
    # no thread waiting. At most 4 (the old bulkhead): threads left to the
    # cheap routes of a worker are GATEWAY_THREADS - 4; below that when the
    # backend's hashing queues up (latency above 1.5x its baseline).
    concurrency_expensive_initial: int = Field(default=4, ge=1)
    concurrency_expensive_min: int = Field(default=1, ge=1)
    concurrency_expensive_max: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for prefix in ("concurrency", "concurrency_expensive"):
            low, start, high = (getattr(self, f"{prefix}_{n}") for n in ("min", "initial", "max"))
            if not low <= start <= high:
                name = f"GATEWAY_{prefix.upper()}"
                raise ValueError(f"{name}_MIN <= {name}_INITIAL <= {name}_MAX must hold")
        if self.concurrency_queue_wait_ms > self.concurrency_queue_wait_max_ms:
            raise ValueError(
                "GATEWAY_CONCURRENCY_QUEUE_WAIT_MS must not exceed "
                "GATEWAY_CONCURRENCY_QUEUE_WAIT_MAX_MS"
            )
        return self


class BreakerState(enum.IntEnum):
    """The value is what /metrics reports (0 closed, 1 half-open, 2 open)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpen(Exception):
    """The breaker refused the call; retry after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open, retry after {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; its outcome is recorded against `generation`."""

    generation: int
    probe: bool


class CircuitBreaker:
    """A count-window failure-ratio breaker with half-open probes. Thread-safe.

    Example::

        breaker = CircuitBreaker("profile", min_calls=6, failure_ratio=0.5)
        permit = breaker.acquire()            # raises CircuitOpen when open
        breaker.record(permit, failed=False)
    """

    def __init__(
        self,
        name: str,
        *,
        window: int = 20,
        min_calls: int = 6,
        failure_ratio: float = 0.5,
        open_seconds: float = 5.0,
        half_open_probes: int = 2,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.min_calls = min(min_calls, window)
        self.failure_ratio = failure_ratio
        self.open_seconds = open_seconds
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._probes_started = 0
        self._probes_passed = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def acquire(self) -> Permit:
        """A permit to call, or CircuitOpen."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                waited = self._clock() - self._opened_at
                if waited < self.open_seconds:
                    raise CircuitOpen(self.open_seconds - waited)
                self._move(BreakerState.HALF_OPEN)
            if self._state is BreakerState.HALF_OPEN:
                if self._probes_started >= self.half_open_probes:
                    # Probes are out; the others wait for their verdict.
                    raise CircuitOpen(min(1.0, self.open_seconds))
                self._probes_started += 1
                return Permit(self._generation, probe=True)
            return Permit(self._generation, probe=False)

    def record(self, permit: Permit, *, failed: bool) -> None:
        """The outcome of a call made with `permit` (ignored if the state moved on)."""
        with self._lock:
            if permit.generation != self._generation:
                return
            if self._state is BreakerState.HALF_OPEN:
                if failed:
                    self._move(BreakerState.OPEN)
                    return
                self._probes_passed += 1
                if self._probes_passed >= self.half_open_probes:
                    self._move(BreakerState.CLOSED)
                return
            self._outcomes.append(failed)
            if len(self._outcomes) >= self.min_calls:
                failures = sum(self._outcomes)
                if failures / len(self._outcomes) >= self.failure_ratio:
                    self._move(BreakerState.OPEN)

    def release(self, permit: Permit) -> None:
        """A call that was not made after all (e.g. the concurrency limit was reached)."""
        with self._lock:
            if permit.probe and permit.generation == self._generation:
                self._probes_started = max(0, self._probes_started - 1)

    def _move(self, state: BreakerState) -> None:
        self._state = state
        self._generation += 1
        self._outcomes.clear()
        self._probes_started = 0
        self._probes_passed = 0
        if state is BreakerState.OPEN:
            self._opened_at = self._clock()
        if self._on_change is not None:
            self._on_change(self.name, state)


class GradientLimit:
    """A concurrency limit that follows a backend's latency (the gradient
    family, after Netflix concurrency-limits' Gradient2Limit and VegasLimit).

    Feed it one sample per finished call: its round trip in seconds, the
    calls in flight when it started (itself included), whether it was
    dropped (timed out or found the backend unavailable), and its method.
    Not thread-safe on its own: ConcurrencyLimiter calls it under its lock.
    O(1) per sample.

    The baseline (the latency without queueing) is kept per method: one
    backend serves fast reads and slower writes, and against the reads'
    baseline every write looked like queueing. In `make bench` the payment
    limit learned GetWallet's ~3 ms from /v1/me, then shrank to its minimum
    on the first CreatePayment calls (~12 ms, a "gradient" of 0.4), and the
    writes queued behind 2 calls in flight per worker until their waits ran
    out as 503s. The limit itself stays one per backend: it guards the
    backend's capacity, whichever method uses it.

    Example::

        limit = GradientLimit(initial=6, minimum=2, maximum=7)
        for _ in range(10):
            limit.update(rtt=0.010, in_flight=6, dropped=False)  # at the baseline: 6 -> 7
        limit.update(rtt=0.030, in_flight=7, dropped=False)      # 3x the baseline: 6 (6.5)
        limit.update(rtt=2.0, in_flight=7, dropped=True)         # a drop, 10% less: 5 (5.85)
        limit.update(0.030, in_flight=5, dropped=False, method="Pay")  # Pay's own baseline: 6
    """

    def __init__(
        self,
        *,
        initial: int,
        minimum: int,
        maximum: int,
        tolerance: float = 1.5,
        smoothing: float = 0.2,
        queue_size: float = 1.0,
        backoff: float = 0.9,
        long_window: int = 600,
        warmup: int = 10,
    ) -> None:
        # tolerance: latency up to 1.5x the baseline still counts as "no
        # queueing" (Gradient2's original rttTolerance). queue_size: the slots
        # the limit probes above the current one; Netflix uses 4 for limits of
        # 20-200, 1 suits limits of 2-7. smoothing 0.2 (Netflix's default): a
        # step of at most 20% of the way to the new estimate per call.
        # backoff: VegasLimit's and AIMD's reaction to a drop. long_window:
        # the baseline averages ~600 calls (Netflix's default), so a backend
        # that stays slow is seen as slow for that long before its latency
        # becomes the new normal.
        self.minimum = minimum
        self.maximum = maximum
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.queue_size = queue_size
        self.backoff = backoff
        self.warmup = warmup
        self._alpha = 2 / (long_window + 1)
        self._recent_alpha = 2 / (10 + 1)
        self._recent = 0.0
        self._limit = float(min(maximum, max(minimum, initial)))
        self._baselines: dict[str, _Baseline] = {}
        self._samples = 0

    @property
    def limit(self) -> int:
        # The epsilon keeps 6.2 + 4 x 0.2 from flooring to 6.
        return int(self._limit + 1e-9)

    def baseline_rtt(self, method: str = "") -> float | None:
        """The long average round trip of `method`'s successful calls (None before any)."""
        baseline = self._baselines.get(method)
        return baseline.rtt if baseline is not None else None

    @property
    def recent_rtt(self) -> float | None:
        """The average round trip of about the last 10 successful calls, of
        any method (None before any)."""
        return self._recent if self._samples else None

    def update(self, rtt: float, in_flight: int, dropped: bool, method: str = "") -> int:
        """Take one sample of `method`; return the new limit."""
        if dropped:
            # A timeout says nothing about the backend's latency (it is the
            # deadline), but that it is overloaded or stuck: back off at once.
            self._limit = max(self.minimum, self._limit * self.backoff)
            return self.limit
        self._samples += 1
        self._recent = (
            rtt if self._samples == 1 else self._recent + (rtt - self._recent) * self._recent_alpha
        )
        baseline = self._baselines.get(method)
        if baseline is None:
            baseline = self._baselines[method] = _Baseline()
        baseline.observe(rtt, self._alpha, self.warmup)
        if in_flight < self._limit / 2:
            # Half the limit unused: the call's latency was not caused by our
            # concurrency and says nothing about whether the backend could take
            # more, so the limit stays (Gradient2's app-limited case). An idle
            # gateway's limit does not drift down on a GC pause or a slow query.
            return self.limit
        # The gradient: 1 while latency is within tolerance of the baseline,
        # down to 0.5 (never halve on one outlier) as queueing builds up.
        gradient = 1.0 if rtt <= 0 else max(0.5, min(1.0, self.tolerance * baseline.rtt / rtt))
        estimate = self._limit * gradient + self.queue_size
        new = self._limit * (1 - self.smoothing) + estimate * self.smoothing
        self._limit = min(self.maximum, max(self.minimum, new))
        return self.limit


class _Baseline:
    """One method's round trip without queueing: the plain mean of its first
    `warmup` calls, then an exponential average over about `long_window`."""

    __slots__ = ("rtt", "samples")

    def __init__(self) -> None:
        self.rtt = 0.0
        self.samples = 0

    def observe(self, rtt: float, alpha: float, warmup: int) -> None:
        self.samples += 1
        if self.samples <= warmup:
            self.rtt += (rtt - self.rtt) / self.samples  # plain mean
        else:
            self.rtt += (rtt - self.rtt) * alpha
        if self.rtt > 2 * rtt:
            # Latency is back to normal after a long spell of load: let go of
            # the inflated baseline faster than the average alone would.
            self.rtt *= 0.9


@dataclass(frozen=True)
class QueueWait:
    """How long a call over the limit may wait for a slot: `rtts` recent
    round trips of the backend, clamped to `minimum` .. `maximum` seconds
    (`minimum` while no round trip is known yet)."""

    minimum: float
    rtts: float
    maximum: float

    def seconds(self, rtt: float | None) -> float:
        if rtt is None:
            return self.minimum
        return min(self.maximum, max(self.minimum, self.rtts * rtt))


class LimitReached(Exception):
    """The backend's limit is reached and no slot freed within the queue wait."""


@dataclass(frozen=True)
class Slot:
    """One admitted call: when it started, the calls in flight then (itself
    included), and its method."""

    started: float
    in_flight: int
    method: str = ""


class _Waiter:
    __slots__ = ("abandoned", "method", "ready", "slot")

    def __init__(self, method: str) -> None:
        self.method = method
        self.ready = threading.Event()
        self.slot: Slot | None = None
        self.abandoned = False


class ConcurrencyLimiter:
    """Admits calls up to a GradientLimit; a call over it waits its turn
    (first come, first served) up to the QueueWait, then is refused. Without
    a QueueWait it is refused at once. Thread-safe, O(1) per call, no
    background thread: a finished call hands its slot to the next waiter.

    Example::

        limiter = ConcurrencyLimiter(
            "payment", GradientLimit(initial=6, minimum=2, maximum=7), QueueWait(0.1, 10, 0.5)
        )
        slot = limiter.acquire()                  # raises LimitReached
        try:
            ...                                   # the call
        finally:
            limiter.release(slot, dropped=False)  # its latency moves the limit
    """

    def __init__(
        self,
        name: str,
        algorithm: GradientLimit,
        queue_wait: QueueWait | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_limit: Callable[[str, int], None] | None = None,
    ) -> None:
        self.name = name
        self.queue_wait = queue_wait
        self._algorithm = algorithm
        self._clock = clock
        self._on_limit = on_limit
        self._lock = threading.Lock()
        self._limit = algorithm.limit
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        self._queued = 0  # waiters in _waiters that have not given up
        if on_limit is not None:
            on_limit(name, self._limit)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return self._queued

    def acquire(self, method: str = "") -> Slot:
        """A slot for one call of `method`, or LimitReached after the queue wait."""
        with self._lock:
            if self._in_flight < self._limit and not self._queued:
                return self._admit(method)
            if self.queue_wait is None:
                raise LimitReached(self.name)
            if not self._queued:
                self._waiters.clear()  # only waiters that gave up are left
            timeout = self.queue_wait.seconds(self._algorithm.recent_rtt)
            waiter = _Waiter(method)
            self._waiters.append(waiter)
            self._queued += 1
        if waiter.ready.wait(timeout):
            assert waiter.slot is not None
            return waiter.slot
        with self._lock:
            if waiter.slot is not None:  # handed a slot as the wait ran out
                return waiter.slot
            waiter.abandoned = True
            self._queued -= 1
        raise LimitReached(self.name)

    def release(self, slot: Slot, *, dropped: bool) -> None:
        """The call of `slot` is over: its round trip (or its drop) moves the
        limit, and its slot goes to the next waiter."""
        rtt = self._clock() - slot.started
        with self._lock:
            self._in_flight -= 1
            limit = self._algorithm.update(rtt, slot.in_flight, dropped, slot.method)
            if limit != self._limit:
                self._limit = limit
                if self._on_limit is not None:
                    # Only on a change: in multiprocess mode a gauge write is a file write.
                    self._on_limit(self.name, limit)
            while self._queued and self._in_flight < self._limit:
                waiter = self._waiters.popleft()
                if waiter.abandoned:
                    continue
                self._queued -= 1
                waiter.slot = self._admit(waiter.method)
                waiter.ready.set()

    def _admit(self, method: str) -> Slot:
        self._in_flight += 1
        return Slot(self._clock(), self._in_flight, method)


@dataclass(frozen=True)
class Ticket:
    """One call admitted by a BackendGuard; give it back to `complete`."""

    permit: Permit
    slot: Slot


def _report_limit(name: str, limit: int) -> None:
    # In flight vs limit on the dashboard: how close the backend is to refusals.
    metrics.BACKEND_IN_FLIGHT_LIMIT.labels(name).set(limit)


class BackendGuard:
    """The breaker and the concurrency limit of one backend's route class.

    Blocking, around one call::

        response = guard_for(backend).call(lambda: stub.GetMyProfile(request, timeout=2))

    In two steps, for a call issued as a future (`complete` may run on
    gRPC's callback thread)::

        guard = guard_for(backend)
        ticket = guard.admit()          # ApiError 503: breaker open, limit reached
        try:
            future = stub.GetMyProfile.future(request, timeout=2)
        except BaseException:
            guard.complete(ticket, grpc.StatusCode.UNKNOWN)
            raise
        future.add_done_callback(lambda f: guard.complete(ticket, f.code()))

    Every ticket goes back to `complete` exactly once.
    """

    def __init__(
        self,
        name: str,
        settings: ResilienceSettings,
        *,
        breaker: CircuitBreaker | None = None,
        expensive: bool = False,
    ) -> None:
        self.name = name
        if breaker is None:
            breaker = CircuitBreaker(
                name,
                window=settings.breaker_window,
                min_calls=settings.breaker_min_calls,
                failure_ratio=settings.breaker_failure_ratio,
                open_seconds=settings.breaker_open_seconds,
                half_open_probes=settings.breaker_half_open_probes,
                on_change=metrics.breaker_changed,
            )
            metrics.breaker_changed(name, BreakerState.CLOSED)
        self.breaker = breaker
        if expensive:
            # Its own label, so /metrics tells the two limits apart; no queue.
            self.limiter = ConcurrencyLimiter(
                f"{name}:expensive",
                GradientLimit(
                    initial=settings.concurrency_expensive_initial,
                    minimum=settings.concurrency_expensive_min,
                    maximum=settings.concurrency_expensive_max,
                ),
                on_limit=_report_limit,
            )
        else:
            self.limiter = ConcurrencyLimiter(
                name,
                GradientLimit(
                    initial=settings.concurrency_initial,
                    minimum=settings.concurrency_min,
                    maximum=settings.concurrency_max,
                ),
                QueueWait(
                    settings.concurrency_queue_wait_ms / 1000,
                    settings.concurrency_queue_wait_rtts,
                    settings.concurrency_queue_wait_max_ms / 1000,
                ),
                on_limit=_report_limit,
            )

        # Bound once: the gauge moves twice on every call.
        self._in_flight = metrics.BACKEND_IN_FLIGHT.labels(self.limiter.name)

    def admit(self, method: str = "") -> Ticket:
        """Leave to make one call of `method`, or ApiError 503 with Retry-After
        when the breaker is open or the limit stays reached through the queue wait."""
        try:
            permit = self.breaker.acquire()
        except CircuitOpen as error:
            metrics.BACKEND_REJECTED.labels(self.name, "circuit_open").inc()
            raise ApiError(
                503,
                f"the {self.name} service is unavailable; try again later",
                headers={"Retry-After": str(max(1, math.ceil(error.retry_after)))},
            ) from None
        try:
            slot = self.limiter.acquire(method)
        except LimitReached:
            self.breaker.release(permit)
            metrics.BACKEND_REJECTED.labels(self.limiter.name, "limit_reached").inc()
            raise ApiError(
                503,
                f"the {self.name} service is saturated; try again later",
                headers={"Retry-After": "1"},
            ) from None
        self._in_flight.inc()
        return Ticket(permit, slot)

    def complete(self, ticket: Ticket, code: grpc.StatusCode | None) -> None:
        """The call of `ticket` ended with `code` (None or OK: it succeeded):
        record the outcome for the breaker and the latency for the limit, and
        free the slot. Safe from any thread."""
        self._finish(ticket, failed=code in BREAKER_FAILURES)

    def call(self, make_call: Callable[[], T], method: str = "") -> T:
        """Run `make_call` (one gRPC call of `method`) under the breaker and the limit.

        Raises ApiError 503 (with Retry-After) when the breaker is open or the
        limit is reached; a grpc.RpcError from the call passes through.
        """
        ticket = self.admit(method)
        try:
            result = make_call()
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            self._finish(ticket, failed=code in BREAKER_FAILURES)
            raise
        except BaseException:
            self._finish(ticket, failed=True)
            raise
        self._finish(ticket, failed=False)
        return result

    def _finish(self, ticket: Ticket, *, failed: bool) -> None:
        self._in_flight.dec()
        self.breaker.record(ticket.permit, failed=failed)
        # The breaker's failures are the limit's drops: the backend is gone or stuck.
        self.limiter.release(ticket.slot, dropped=failed)


# Per backend: its guard of the cheap routes (False) and of the expensive ones
# (True), sharing one breaker.
_guards: weakref.WeakKeyDictionary[Backend, dict[bool, BackendGuard]] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()
_settings: ResilienceSettings | None = None


def resilience_settings() -> ResilienceSettings:
    global _settings  # noqa: PLW0603 - read once per process
    if _settings is None:
        _settings = load_settings(ResilienceSettings)
    return _settings


def guard_for(backend: Backend, *, expensive: bool = False) -> BackendGuard:
    """The guard of `backend`'s cheap or expensive routes in this process (one
    pair per Backend object, sharing the backend's breaker)."""
    with _guards_lock:
        guards = _guards.setdefault(backend, {})
        guard = guards.get(expensive)
        if guard is None:
            other = guards.get(not expensive)
            guard = BackendGuard(
                backend.name,
                resilience_settings(),
                breaker=other.breaker if other is not None else None,
                expensive=expensive,
            )
            guards[expensive] = guard
        return guard


__all__ = [
    "BREAKER_FAILURES",
    "BackendGuard",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "ConcurrencyLimiter",
    "GradientLimit",
    "LimitReached",
    "Permit",
    "QueueWait",
    "ResilienceSettings",
    "Slot",
    "Ticket",
    "guard_for",
    "resilience_settings",
]
