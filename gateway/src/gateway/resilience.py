"""Per-backend circuit breakers and bulkheads in the gateway.

A breaker watches the outcomes of the last calls to one backend (a count
window). Once at least `min_calls` are in the window and the share of
failures (UNAVAILABLE or DEADLINE_EXCEEDED: the backend is gone or stuck)
reaches `failure_ratio`, it opens: calls fail at once as 503 with
Retry-After, without touching the network. After `open_seconds` it lets
`half_open_probes` calls through; if they all succeed it closes, if one
fails it opens again.

A bulkhead bounds the calls in flight to one backend in one worker process,
so a slow backend holds at most that many of the worker's threads; a call
beyond the bound waits at most `bulkhead_wait_ms` for a slot (a burst against
a healthy backend frees one within milliseconds), then fails as 503.

Route classes: the RPCs whose proto marks them `expensive` (signup, login,
refresh: a password hash or more each) run in a second bulkhead of the same
backend, GATEWAY_BULKHEAD_EXPENSIVE_MAX_IN_FLIGHT calls per worker, that
sheds at once (no wait) when full. Before, all of auth's routes shared one
bulkhead of 6: 36 parallel signups took every slot and another user's
GET /v1/auth/sessions answered 503. Now a burst of expensive calls fills
only its own bulkhead (and the threads it bounds); the cheap routes keep
theirs. The breaker stays one per backend: a backend that is down is down
for both classes.

Each gunicorn worker has its own breakers and bulkheads (no shared state
between processes); /metrics shows each backend's worst state across workers.

Settings (GATEWAY_BREAKER_*, GATEWAY_BULKHEAD_*) are read once per process.
"""

from __future__ import annotations

import enum
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from switchyard_kit import Backend, load_settings

from gateway import metrics
from gateway.problems import ApiError

T = TypeVar("T")

# Codes that say the backend is down or stuck, as opposed to "your request is wrong".
BREAKER_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class ResilienceSettings(BaseSettings):
    """Breaker and bulkhead limits, the same for every backend.

    Example::

        GATEWAY_BREAKER_OPEN_SECONDS=10 GATEWAY_BULKHEAD_MAX_IN_FLIGHT=4 python -m gateway
    """

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    breaker_window: int = Field(default=20, ge=1)
    breaker_min_calls: int = Field(default=6, ge=1)
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_open_seconds: float = Field(default=5.0, gt=0)
    breaker_half_open_probes: int = Field(default=2, ge=1)
    # Keep it below GATEWAY_THREADS, so other backends always keep a thread.
    bulkhead_max_in_flight: int = Field(default=6, ge=1)
    bulkhead_wait_ms: int = Field(default=100, ge=0)
    # Expensive routes (proto option `expensive`): their own, smaller bulkhead,
    # which does not queue: a burst beyond it is shed at once as 503, so it
    # holds no thread waiting. Threads left to the cheap routes of a worker:
    # GATEWAY_THREADS - this (8 - 4).
    bulkhead_expensive_max_in_flight: int = Field(default=4, ge=1)
    bulkhead_expensive_wait_ms: int = Field(default=0, ge=0)


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
        """A call that was not made after all (e.g. the bulkhead was full)."""
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


class BulkheadFull(Exception):
    """Every slot of the backend's bulkhead is taken."""


class Bulkhead:
    """At most `limit` calls in flight at once; the next one waits up to
    `wait_seconds` for a slot, then fails."""

    def __init__(self, name: str, limit: int, wait_seconds: float = 0.0) -> None:
        self.name = name
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.in_flight = 0
        # In flight vs limit on the dashboard: how close the backend is to refusals.
        metrics.BACKEND_IN_FLIGHT_LIMIT.labels(name).set(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        acquired = (
            self._slots.acquire(timeout=self.wait_seconds)
            if self.wait_seconds > 0
            else self._slots.acquire(blocking=False)
        )
        if not acquired:
            raise BulkheadFull(self.name)
        with self._lock:
            self.in_flight += 1
        metrics.BACKEND_IN_FLIGHT.labels(self.name).inc()
        try:
            yield
        finally:
            metrics.BACKEND_IN_FLIGHT.labels(self.name).dec()
            with self._lock:
                self.in_flight -= 1
            self._slots.release()


class BackendGuard:
    """The breaker and the bulkhead of one backend, around one call.

    Example::

        response = guard_for(backend).call(lambda: stub.GetMyProfile(request, timeout=2))
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
            # Its own label, so /metrics tells the two bulkheads apart.
            self.bulkhead = Bulkhead(
                f"{name}:expensive",
                settings.bulkhead_expensive_max_in_flight,
                settings.bulkhead_expensive_wait_ms / 1000,
            )
        else:
            self.bulkhead = Bulkhead(
                name, settings.bulkhead_max_in_flight, settings.bulkhead_wait_ms / 1000
            )

    def call(self, make_call: Callable[[], T]) -> T:
        """Run `make_call` (one gRPC call) under the breaker and the bulkhead.

        Raises ApiError 503 (with Retry-After) when the breaker is open or the
        bulkhead is full; a grpc.RpcError from the call passes through.
        """
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
            with self.bulkhead.slot():
                failed = True
                try:
                    result = make_call()
                    failed = False
                except grpc.RpcError as error:
                    code = error.code() if isinstance(error, grpc.Call) else None
                    failed = code in BREAKER_FAILURES
                    raise
                finally:
                    self.breaker.record(permit, failed=failed)
                return result
        except BulkheadFull:
            self.breaker.release(permit)
            metrics.BACKEND_REJECTED.labels(self.bulkhead.name, "bulkhead_full").inc()
            raise ApiError(
                503,
                f"the {self.name} service is saturated; try again later",
                headers={"Retry-After": "1"},
            ) from None


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
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpen",
    "Permit",
    "ResilienceSettings",
    "guard_for",
    "resilience_settings",
]
