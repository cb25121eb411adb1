"""RED metrics per route template and per backend call, breaker states,
concurrency limits, admission control (queue waits, shed requests) and rate limits,
served at /metrics on GATEWAY_METRICS_PORT only, never on the public port.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py before
prometheus_client is imported) makes every worker write its samples to
files; the gunicorn master serves /metrics on the private port
(`serve_private`) and aggregates the files of all workers there.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger("switchyard.gateway.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Waits for a worker thread: well under a millisecond when idle, the limit
# (GATEWAY_MAX_QUEUE_WAIT_MS) in the tens of milliseconds.
QUEUE_WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED_ROUTE = "(unmatched)"

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)

BACKEND_CALLS = Counter(
    "gateway_backend_calls",
    "gRPC calls to a backend, by backend, method and status code.",
    ["backend", "method", "code"],
)
BACKEND_REJECTED = Counter(
    "gateway_backend_rejected",
    "Calls refused before reaching a backend (circuit_open, limit_reached).",
    ["backend", "reason"],
)
BACKEND_IN_FLIGHT = Gauge(
    "gateway_backend_in_flight",
    "Calls in flight to a backend (summed over live workers).",
    ["backend"],
    multiprocess_mode="livesum",
)
BACKEND_IN_FLIGHT_LIMIT = Gauge(
    "gateway_backend_in_flight_limit",
    "The adaptive limit of calls in flight to a backend, as it is now (summed over live "
    "workers, like gateway_backend_in_flight).",
    ["backend"],
    multiprocess_mode="livesum",
)
BREAKER_STATE = Gauge(
    "gateway_circuit_breaker_state",
    "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open (worst live worker).",
    ["backend"],
    multiprocess_mode="livemax",
)
BREAKER_TRANSITIONS = Counter(
    "gateway_circuit_breaker_transitions",
    "Circuit breaker state changes per backend, by the state entered.",
    ["backend", "state"],
)

# gateway.admission: time from a request being queued for a worker thread to a
# thread starting on it, and the requests answered 503 for waiting too long.
QUEUE_WAIT = Histogram(
    "gateway_queue_wait_seconds",
    "Time a request waited in its gunicorn worker for a free thread.",
    buckets=QUEUE_WAIT_BUCKETS,
)
REQUESTS_SHED = Counter(
    "gateway_requests_shed",
    "Requests answered 503 at once, unprocessed, because they waited longer than "
    "GATEWAY_MAX_QUEUE_WAIT_MS for a worker thread.",
)

# gateway.header_wait: connections closed before they got a thread, because
# their request headers were late or too large.
SLOW_CLIENTS_CLOSED = Counter(
    "gateway_slow_clients_closed",
    "Connections closed unserved: headers incomplete after GATEWAY_HEADER_TIMEOUT_SECONDS "
    "(header_timeout) or over GATEWAY_MAX_HEADER_BYTES (headers_too_large).",
    ["reason"],
)

# gateway.ratelimit: requests refused by a per-address limit, and checks that
# failed open because the limit's storage (Redis) failed.
RATE_LIMITED = Counter(
    "gateway_rate_limited",
    "Requests answered 429 by a per-client-address rate limit, by limit.",
    ["limit"],
)
RATE_LIMIT_ERRORS = Counter(
    "gateway_rate_limit_errors",
    "Rate limit checks let through because the limit's storage (Redis) failed, by limit.",
    ["limit"],
)


def breaker_changed(backend: str, state: int) -> None:
    """Record a breaker's new state (an IntEnum: its value is the gauge)."""
    BREAKER_STATE.labels(backend).set(int(state))
    name = getattr(state, "name", str(state)).lower()
    BREAKER_TRANSITIONS.labels(backend, name).inc()


# Label children by their label values, per process. `labels()` validates and
# looks its child up under a lock on every call; these few series are the same
# on every request, so each is looked up once. (A child made before a fork
# would write to the parent's file; the gateway builds its app in each worker.)
_CALLS: dict[tuple[str, str, str], Any] = {}
_REQUESTS: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_call(backend: str, method: str, code: str) -> None:
    key = (backend, method, code)
    child = _CALLS.get(key)
    if child is None:
        child = _CALLS.setdefault(key, BACKEND_CALLS.labels(backend, method, code))
    child.inc()


def observe(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _REQUESTS.get(key)
    if children is None:
        children = _REQUESTS.setdefault(
            key,
            (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route)),
        )
    count, duration = children
    count.inc()
    duration.observe(seconds)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's samples in multiprocess mode."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def serve_private(port: int, host: str) -> None:
    """Serve /metrics on `port` (0: not at all) from a thread of this process.

    Run in the gunicorn master: it outlives the workers, and in multiprocess
    mode it reads every worker's files, so one scrape sees the whole pod.
    A port already taken (say, by a gateway still draining on this host) is
    logged, not fatal: missing metrics must not take the API down with them.
    """
    if not port:
        return
    try:
        start_http_server(port, addr=host, registry=_registry())
    except OSError as error:
        logger.error(
            "metrics port unavailable; /metrics is not served",
            extra={"port": port, "error": str(error)},
        )
