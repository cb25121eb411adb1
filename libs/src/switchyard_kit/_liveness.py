"""Liveness of a worker or relay loop: a heartbeat turned by the loop itself,
answered over HTTP by a side thread that only reports it.

The beat comes from the main loop between its calls, never from a timer
thread: a loop blocked in a hung call (a database that stopped answering, a
frozen process) stops beating, and the probe turns 503 once the last beat is
older than `max_age_seconds`. Before the first beat the probe answers 503 too,
which is what a Kubernetes startup probe waits out.

The same port answers /metrics (the process's Prometheus registry), with the
heartbeat's age as `loop_heartbeat_age_seconds` and its bound as
`loop_heartbeat_max_age_seconds`: every worker and relay can be scraped there,
and an alert sees a loop that stopped turning before the probe restarts it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from typing_extensions import override

logger = logging.getLogger("switchyard.liveness")

LIVENESS_PATH = "/livez"
METRICS_PATH = "/metrics"


class Heartbeat:
    """The time of the last turn of a loop.

    Example::

        heartbeat = Heartbeat(max_age_seconds=30)
        while not stop.is_set():
            heartbeat.beat()
            do_one_bounded_step()
    """

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive")
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._last: float | None = None

    def beat(self) -> None:
        # A float assignment is atomic under the GIL: the probe thread reads it
        # without a lock, and the loop never waits on the probe.
        self._last = self._clock()

    def age(self) -> float | None:
        """Seconds since the last beat; None before the first."""
        last = self._last
        return None if last is None else self._clock() - last

    def alive(self) -> bool:
        age = self.age()
        return age is not None and age <= self.max_age_seconds


class _HeartbeatCollector(Collector):
    """The age of the process's heartbeat at scrape time (nothing before one exists)."""

    def __init__(self) -> None:
        self.heartbeat: Heartbeat | None = None

    def collect(self) -> Iterator[Metric]:
        heartbeat = self.heartbeat
        if heartbeat is None:
            return
        age = GaugeMetricFamily(
            "loop_heartbeat_age_seconds",
            "Seconds since the main loop last turned (absent before its first turn).",
        )
        current = heartbeat.age()
        if current is not None:
            age.add_metric([], current)
        yield age
        yield GaugeMetricFamily(
            "loop_heartbeat_max_age_seconds",
            "The age past which the liveness probe answers 503.",
            value=heartbeat.max_age_seconds,
        )


_heartbeat_collector = _HeartbeatCollector()
REGISTRY.register(_heartbeat_collector)


class _LivenessHandler(BaseHTTPRequestHandler):
    heartbeat: Heartbeat

    def do_GET(self) -> None:
        if self.path == METRICS_PATH:
            self._answer(200, generate_latest(REGISTRY).decode(), CONTENT_TYPE_LATEST)
            return
        if self.path != LIVENESS_PATH:
            self._answer(404, "not found\n")
            return
        age = self.heartbeat.age()
        if self.heartbeat.alive():
            self._answer(200, f"ok: last turn {age:.1f}s ago\n")
        elif age is None:
            self._answer(503, "starting: the loop has not turned yet\n")
        else:
            self._answer(503, f"stuck: last turn {age:.1f}s ago\n")

    def _answer(
        self, status: int, body: str, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @override
    def log_message(self, format: str, *args: object) -> None:
        # Probes come every few seconds: not worth a log line each.
        return


def start_liveness(port: int, host: str = "127.0.0.1", max_age_seconds: float = 30.0) -> Heartbeat:
    """A heartbeat for the caller's main loop, served on `http://host:port/livez`
    from a daemon thread (200 while the last beat is at most `max_age_seconds`
    old, else 503) and `/metrics` (the registry, with the heartbeat's age) from
    a daemon thread; port 0 serves nothing and returns the heartbeat alone.

    Example::

        heartbeat = start_liveness(settings.liveness_port, settings.host)
        relay.run(stop, heartbeat=heartbeat)
    """
    heartbeat = Heartbeat(max_age_seconds)
    # One loop per process: the latest heartbeat is the one /metrics reports.
    _heartbeat_collector.heartbeat = heartbeat
    if not port:
        return heartbeat
    handler = type("LivenessHandler", (_LivenessHandler,), {"heartbeat": heartbeat})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="liveness", daemon=True).start()
    logger.info("liveness endpoint", extra={"port": port, "max_age_seconds": max_age_seconds})
    return heartbeat


def wait_beating(stop: threading.Event, seconds: float, heartbeat: Heartbeat | None) -> None:
    """Sleep up to `seconds` (less once `stop` is set), beating at least every
    second: a loop idling on purpose (a backoff) is alive, not stuck."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        if heartbeat is not None:
            heartbeat.beat()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(left, 1.0))
