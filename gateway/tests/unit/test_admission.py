"""Admission control: the shed decision, the worker's hand-over of the wait, the middleware."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder

from gateway import admission, metrics


@pytest.mark.parametrize(
    ("waited", "limit", "path", "shed"),
    [
        (0.200, 0.100, "/v1/profiles/me", True),
        (0.101, 0.100, "/v1/payments", True),
        (0.100, 0.100, "/v1/profiles/me", False),
        (0.010, 0.100, "/v1/profiles/me", False),
        (5.000, 0.0, "/v1/profiles/me", False),
        (None, 0.100, "/v1/profiles/me", False),
        (5.000, 0.100, "/healthz", False),
        (5.000, 0.100, "/readyz", False),
        (5.000, 0.100, "/metrics", True),
        (5.000, 0.100, "/healthz/", False),
        (5.000, 0.100, "/healthzz", True),
        (5.000, 0.100, "/v1/healthz", True),
        (5.000, 0.100, "/", True),
        (5.000, 0.100, "", True),
    ],
)
def test_should_shed(waited: float | None, limit: float, path: str, shed: bool) -> None:
    assert admission.should_shed(waited, limit, path) is shed


def test_the_wait_is_taken_once() -> None:
    admission._handoff.waited = 0.25
    assert admission.take_queue_wait() == 0.25
    assert admission.take_queue_wait() is None


def test_a_fresh_thread_knows_no_wait() -> None:
    seen: list[float | None] = []
    admission._handoff.waited = 0.25
    thread = threading.Thread(target=lambda: seen.append(admission.take_queue_wait()))
    thread.start()
    thread.join()
    assert seen == [None]
    admission.take_queue_wait()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def queue_of(limit: float, clock: Clock) -> admission.AdmissionQueue:
    # No threads: the test takes the items itself (and a backlog no test reaches).
    return admission.AdmissionQueue(0, limit, clock=clock, standing_backlog=100)


def taken(queue: admission.AdmissionQueue) -> tuple[str, float]:
    result = queue.take()
    assert result is not None
    item, waited = result
    return item.args[0], round(waited, 3)


def test_queue_is_fifo_while_it_drains_quickly() -> None:
    clock = Clock()
    queue = queue_of(0.2, clock)
    for name in "abc":
        queue.submit(str, name)
        clock.now += 0.01
    assert [taken(queue) for _ in range(3)] == [("a", 0.03), ("b", 0.02), ("c", 0.01)]


def test_queue_serves_the_newest_once_the_oldest_waited_half_the_limit() -> None:
    clock = Clock()
    queue = queue_of(0.2, clock)
    queue.submit(str, "old")
    clock.now += 0.09
    queue.submit(str, "mid")
    clock.now += 0.02  # "old" has waited 0.11 s > 0.1 s
    queue.submit(str, "new")
    assert taken(queue) == ("new", 0.0)
    assert taken(queue) == ("mid", 0.02)
    assert taken(queue) == ("old", 0.11)  # alone: newest and oldest at once


def test_queue_serves_the_newest_while_more_wait_than_its_standing_backlog() -> None:
    clock = Clock()
    queue = admission.AdmissionQueue(0, 0.2, clock=clock, standing_backlog=2)
    for name in "abc":
        queue.submit(str, name)
        clock.now += 0.001
    # Three waiting, over a backlog of 2, though none waited half the limit.
    assert taken(queue) == ("c", 0.001)
    # Two left: within the backlog, first-in-first-out again.
    assert [taken(queue)[0] for _ in range(2)] == ["a", "b"]


def test_the_standing_backlog_is_two_rounds_of_threads() -> None:
    queue = admission.AdmissionQueue(3, 0.2)
    try:
        assert queue.standing_backlog == 6
    finally:
        queue.shutdown()


def test_queue_takes_expired_items_first() -> None:
    clock = Clock()
    queue = queue_of(0.2, clock)
    queue.submit(str, "expired")
    clock.now += 0.15
    queue.submit(str, "waiting")
    clock.now += 0.06
    queue.submit(str, "fresh")
    assert taken(queue) == ("expired", 0.21)
    # "waiting" (0.06 s) is now the oldest, under half the limit: FIFO again.
    assert taken(queue) == ("waiting", 0.06)
    assert taken(queue) == ("fresh", 0.0)


def test_queue_without_a_limit_is_fifo() -> None:
    clock = Clock()
    queue = queue_of(0.0, clock)
    queue.submit(str, "a")
    clock.now += 10
    queue.submit(str, "b")
    assert [taken(queue)[0] for _ in range(2)] == ["a", "b"]


def test_queue_ends_once_shut_down_and_drained() -> None:
    queue = queue_of(0.2, Clock())
    queue.submit(str, "a")
    queue.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        queue.submit(str, "b")
    assert taken(queue)[0] == "a"
    assert queue.take() is None


def test_queue_cancels_what_is_queued_on_request() -> None:
    queue = queue_of(0.2, Clock())
    future = queue.submit(str, "a")
    queue.shutdown(wait=False, cancel_futures=True)
    assert future.cancelled()
    assert queue.take() is None


def test_queue_threads_hand_each_item_its_wait() -> None:
    queue = admission.AdmissionQueue(2, 0.2)
    try:
        waits = [queue.submit(admission.take_queue_wait).result(timeout=5) for _ in range(3)]
        assert all(wait is not None and 0 <= wait < 5 for wait in waits)
        assert isinstance(queue.submit(lambda: 1 / 0).exception(timeout=5), ZeroDivisionError)
        assert queue.submit(lambda a, b=0: a + b, 1, b=2).result(timeout=5) == 3
        # Cleared after each item, taken or not: nothing later on the thread
        # sees a stale wait. (A thread-local's __dict__ is that thread's own.)
        state = queue.submit(lambda: admission._handoff.__dict__).result(timeout=5)
        queue.shutdown(wait=True)
        assert state["waited"] is None
    finally:
        queue.shutdown(wait=True)
    assert not any(thread.is_alive() for thread in queue._threads)


def test_worker_runs_on_an_admission_queue_with_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_MAX_QUEUE_WAIT_MS", "125")
    # Only get_thread_pool runs: no arbiter, sockets or app needed.
    worker = admission.AdmissionWorker.__new__(admission.AdmissionWorker)
    worker.cfg = SimpleNamespace(threads=3)
    pool = worker.get_thread_pool()
    try:
        assert isinstance(pool, admission.AdmissionQueue)
        assert pool.max_wait_seconds == 0.125
        assert len(pool._threads) == 3
    finally:
        pool.shutdown(wait=True)


class App:
    """A WSGI app that counts the requests that reach it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok":true}']


def call(
    middleware: admission.AdmissionControl, waited: float | None, path: str, **kwargs: Any
) -> Any:
    admission._handoff.waited = waited
    environ = EnvironBuilder(path=path, **kwargs).get_environ()
    return Client(middleware).open(environ)


def shed_count() -> float:
    value = metrics.REGISTRY.get_sample_value("gateway_requests_shed_total")
    return value or 0.0


def test_a_request_that_waited_too_long_is_shed_as_problem_json() -> None:
    app = App()
    middleware = admission.AdmissionControl(app, max_wait_seconds=0.05)
    before = shed_count()

    response = call(
        middleware, 0.2, "/v1/payments", method="POST", headers={"X-Request-Id": "req-1"}
    )

    assert app.calls == 0
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Request-Id"] == "req-1"
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.get_data()) == {
        "type": "https://switchyard.dev/problems/unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": admission.SHED_DETAIL,
        "code": "UNAVAILABLE",
        "request_id": "req-1",
    }
    assert shed_count() == before + 1


def test_a_shed_request_without_a_sane_request_id_gets_one() -> None:
    response = call(
        admission.AdmissionControl(App(), 0.05),
        0.2,
        "/v1/me",
        headers={"X-Request-Id": "no spaces"},
    )
    request_id = response.headers["X-Request-Id"]
    assert request_id != "no spaces"
    assert json.loads(response.get_data())["request_id"] == request_id


@pytest.mark.parametrize(
    ("waited", "path"),
    [(0.01, "/v1/profiles/me"), (None, "/v1/profiles/me"), (3.0, "/healthz"), (3.0, "/readyz")],
)
def test_admitted_requests_reach_the_app(waited: float | None, path: str) -> None:
    app = App()
    before = shed_count()
    response = call(admission.AdmissionControl(app, 0.05), waited, path)
    assert (response.status_code, app.calls) == (200, 1)
    assert shed_count() == before


def test_a_zero_limit_sheds_nothing() -> None:
    app = App()
    assert call(admission.AdmissionControl(app, 0.0), 30.0, "/v1/profiles/me").status_code == 200
    assert app.calls == 1


def test_every_wait_is_observed() -> None:
    def count() -> float:
        return metrics.REGISTRY.get_sample_value("gateway_queue_wait_seconds_count") or 0.0

    before = count()
    middleware = admission.AdmissionControl(App(), 0.05)
    call(middleware, 0.01, "/v1/me")
    call(middleware, 0.2, "/v1/me")
    call(middleware, None, "/v1/me")
    assert count() == before + 2
