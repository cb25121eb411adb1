"""Admission control: a request that waited too long for a thread gets a 503, unprocessed.

Under overload the gateway's time goes to a queue the app never sees.
gunicorn's gthread worker accepts every connection and queues each ready
request for one of its `threads`; with 512 keep-alive connections on 2 x 8
threads a 5 ms profile read waits ~0.5-1 s there. The per-backend
concurrency limits (gateway.resilience) only see requests that already hold
a thread, so they cannot help: by then the wait has happened.

So the wait is measured where it happens and acted on before any work is
done:

- `AdmissionWorker` (gunicorn's `worker_class`) is gthread on an
  `AdmissionQueue`: the thread pool gthread submits each request to
  (`enqueue_req` -> `submit`, `handle` runs on a pool thread). It knows when
  each request was queued, picks the next one by the rules in its docstring
  (FIFO; newest first under a standing queue; expired first), and hands the
  wait to the thread that serves it.
- `AdmissionControl` (WSGI middleware around the Flask app, installed in
  gunicorn's post_worker_init) answers a request that waited longer than
  `GATEWAY_MAX_QUEUE_WAIT_MS` with 503 problem+json and `Retry-After: 1`,
  without entering Flask or calling a backend. Such a request was not
  processed at all, so retrying it is safe whatever its method.
- `should_shed` is the decision; the probes (/healthz, /readyz) are never
  shed: a probe failed under load would make Kubernetes pull the pod out of
  the Service or restart it, turning overload into an outage. (/metrics is
  served on a port of its own by the gunicorn master, never queued here.)

The decision stays in a WSGI middleware, not in the worker, because only
gunicorn's parser knows the path, and because it keeps gunicorn's HTTP
handling (keep-alive, body draining, HEAD) for the 503 too. The wait goes
from the queue to the middleware through a thread-local: gunicorn builds the
WSGI environ from the parsed request alone, and the pool thread that took
the request from the queue is the one that runs the app for it. The
middleware takes the value (reads and clears it), so nothing served later on
that thread is judged by a stale wait.

Every request's wait is observed in `gateway_queue_wait_seconds` and every
shed counted in `gateway_requests_shed_total`.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Request

from gateway import metrics
from gateway.calls import request_id_from
from gateway.header_wait import HeaderWaitWorker
from gateway.problems import ApiError, problem_response
from gateway.settings import load_gateway_settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Never shed: liveness and readiness (see above). The app matches
# paths with and without a trailing slash, so they are compared without it.
OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz"})
SHED_DETAIL = "the gateway is overloaded and did not process the request; try again later"
RETRY_AFTER_SECONDS = 1

T = TypeVar("T")
# The wait of the request a thread is serving, from AdmissionQueue to AdmissionControl.
_handoff = threading.local()


def should_shed(waited_seconds: float | None, max_wait_seconds: float, path: str) -> bool:
    """Whether a request that waited `waited_seconds` for a thread is answered 503.

    A limit of 0 turns shedding off; an unknown wait (the app not served by
    AdmissionWorker) is never shed, nor is an operational path.

    Example::

        should_shed(0.250, 0.100, "/v1/profiles/me")   # True
        should_shed(0.250, 0.100, "/healthz")          # False
    """
    if max_wait_seconds <= 0 or waited_seconds is None:
        return False
    if (path.rstrip("/") or "/") in OPERATIONAL_PATHS:
        return False
    return waited_seconds > max_wait_seconds


def take_queue_wait() -> float | None:
    """The wait of the request this thread is serving, once (None if unknown)."""
    waited: float | None = getattr(_handoff, "waited", None)
    _handoff.waited = None
    return waited


@dataclass
class _Item:
    queued_at: float
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]


class AdmissionQueue(Executor):
    """The worker's thread pool: `threads` threads taking requests from one queue.

    A stand-in for ThreadPoolExecutor (gthread only calls `submit` and
    `shutdown`) whose queue knows how long each item has waited and takes:

    1. the oldest item, once it has waited over `max_wait_seconds`: it is
       answered at once (shed, or for a probe served late), so no request
       waits much longer than the limit;
    2. else, while the oldest has waited over half the limit, or more items
       wait than `standing_backlog` (default: two rounds of the worker's
       threads), the newest: a standing queue has formed (not a burst that
       drains by itself), under FIFO every request would now wait about as
       long as the oldest, while the newest can still be served in time and
       the oldest only shed;
    3. else the oldest: plain FIFO, fair while the queue drains quickly.

    Why not FIFO alone: under sustained overload every request waits behind
    the whole queue, so once it holds more than the limit's worth of work
    every request is too late when its turn comes. Measured with 512
    connections (closed loop) on a 100 ms limit: FIFO alone shed ~90% of
    the requests, admitted a quarter as many as without shedding and left
    their p99 at 300-900 ms; with rule 2 their p99 was ~230 ms (~150 ms
    with the default 500 ms limit, against ~1 s without shedding).
    Newest-first under a standing queue is the "adaptive LIFO" of
    Facebook's "Fail at Scale" (2015). Rule 2 waits for half the limit
    because always newest-first starves a few requests of a short, healthy
    queue (32 connections on 16 threads) into sheds.

    Why the backlog as well: with the wait alone, newest-first began only
    once the oldest had waited half the limit (250 ms), so under overload
    (512 connections) the requests served first-in-first-out until then
    made the accepted requests' p99 ~250 ms, 25x the unloaded p99 (`make
    bench`, scenario 8). A queue of more than two rounds of threads is
    overload at once: a closed loop of up to twice the worker's threads in
    connections (32 on 2 x 8: the bench's scenarios) never queues that many
    per worker, so healthy load stays first-in-first-out.

    A `max_wait_seconds` of 0 is FIFO, as gunicorn's own pool. With 0
    `threads` nothing serves the queue (for tests calling `take`).
    """

    def __init__(
        self,
        threads: int,
        max_wait_seconds: float,
        clock: Callable[[], float] = monotonic,
        *,
        standing_backlog: int | None = None,
    ) -> None:
        self.max_wait_seconds = max_wait_seconds
        self.standing_backlog = 2 * threads if standing_backlog is None else standing_backlog
        self._clock = clock
        self._items: deque[_Item] = deque()
        self._ready = threading.Condition()
        self._shutdown = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"gateway-thread-{n}") for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        call = functools.partial(fn, **kwargs) if kwargs else fn
        with self._ready:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._items.append(_Item(self._clock(), future, call, args))
            self._ready.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As ThreadPoolExecutor's: queued items are still served unless cancelled."""
        with self._ready:
            self._shutdown = True
            if cancel_futures:
                while self._items:
                    self._items.popleft().future.cancel()
            self._ready.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def take(self) -> tuple[_Item, float] | None:
        """The next item and how long it waited; None once shut down and drained."""
        with self._ready:
            while not self._items:
                if self._shutdown:
                    return None
                self._ready.wait()
            now = self._clock()
            limit = self.max_wait_seconds
            oldest_wait = now - self._items[0].queued_at
            standing = oldest_wait > limit / 2 or len(self._items) > self.standing_backlog
            if limit > 0 and oldest_wait <= limit and standing:
                item = self._items.pop()  # rule 2: a standing queue, newest first
            else:
                item = self._items.popleft()  # rule 1 (expired) or 3 (FIFO)
            return item, now - item.queued_at

    def _serve(self) -> None:
        while (taken := self.take()) is not None:
            item, waited = taken
            if not item.future.set_running_or_notify_cancel():
                continue
            _handoff.waited = waited
            try:
                result = item.fn(*item.args)
            except BaseException as error:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)
            finally:
                _handoff.waited = None


class AdmissionWorker(HeaderWaitWorker):
    """gunicorn's gthread worker on an AdmissionQueue (GATEWAY_MAX_QUEUE_WAIT_MS),
    queueing a connection only once its request headers are complete
    (gateway.header_wait).

    gthread queues a connection for a thread when it is accepted, when a
    kept-alive one becomes readable again and when more of its bytes are
    already read; the queue hands each request's wait to the thread serving it.
    """

    def get_thread_pool(self) -> AdmissionQueue:
        settings = load_gateway_settings()
        return AdmissionQueue(self.cfg.threads, settings.max_queue_wait_ms / 1000)


class AdmissionControl:
    """WSGI middleware: sheds requests that waited over `max_wait_seconds` for a thread.

    Example (gunicorn's post_worker_init)::

        worker.wsgi = AdmissionControl(worker.wsgi, max_wait_seconds=0.05)
    """

    def __init__(self, app: WSGIApplication, max_wait_seconds: float) -> None:
        self.app = app
        self.max_wait_seconds = max_wait_seconds

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        waited = take_queue_wait()
        if waited is not None:
            metrics.QUEUE_WAIT.observe(waited)
        if should_shed(waited, self.max_wait_seconds, environ.get("PATH_INFO", "")):
            metrics.REQUESTS_SHED.inc()
            return self._shed(environ, start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _shed(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Not logged: under overload one line per shed would add to the load;
        # the counter says how many.
        request_id = request_id_from(Request(environ))
        error = ApiError(503, SHED_DETAIL, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        response = problem_response(error, request_id)
        # The headers the app's after_request sets on every answer.
        response.headers["X-Request-Id"] = request_id
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response(environ, start_response)


__all__ = [
    "OPERATIONAL_PATHS",
    "AdmissionControl",
    "AdmissionQueue",
    "AdmissionWorker",
    "should_shed",
    "take_queue_wait",
]
