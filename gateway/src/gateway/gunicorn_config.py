"""gunicorn settings and hooks for the gateway (loaded by gunicorn.conf.py).

Prometheus multiprocess mode needs PROMETHEUS_MULTIPROC_DIR before
prometheus_client is first imported, so it is set here, at the top, before
anything imports the gateway's modules. Nothing is connected in the master:
workers open their gRPC channels on first use, after the fork, and set up
OpenTelemetry (post_fork: the span exporter's thread belongs to the worker).

Admission control (gateway.admission): the worker class measures how long
each request waited for a thread, and post_worker_init wraps the app in the
middleware that answers a request that waited over GATEWAY_MAX_QUEUE_WAIT_MS
with a fast 503, before Flask.

Shutdown budget (SIGTERM, e.g. from Kubernetes): /readyz turns 503 at once,
in-flight requests get `graceful_timeout` (GATEWAY_GRACEFUL_TIMEOUT_SECONDS,
20 s) to finish, which is above the longest route deadline (5 s) and below
the pod's terminationGracePeriodSeconds (30 s) minus its preStop pause (5 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")

from gateway.settings import load_gateway_settings

_settings = load_gateway_settings()

wsgi_app = "gateway.app:create_app()"
bind = [_settings.bind_address]
# gthread, plus the time each request waits for a thread (gateway.admission).
worker_class = "gateway.admission.AdmissionWorker"
workers = _settings.workers
threads = _settings.threads
graceful_timeout = _settings.graceful_timeout_seconds
# A worker busy longer than this is killed; above the longest route deadline.
timeout = 30
keepalive = _settings.keepalive_seconds
# SO_REUSEPORT: a new gateway can bind the port while the old one drains
# (a replacement on one host with no refused connection; in a pod, harmless).
reuse_port = True
# Heartbeat files in memory, not on a (possibly slow or read-only) disk.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 - tmpfs by design
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "switchyard-gateway"
preload_app = False
# No runtime control socket (gunicorn >= 24 would create one under $HOME).
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder: samples of a previous run are stale."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_file() and entry.suffix == ".db":
            entry.unlink()


def when_ready(server: Any) -> None:
    """/metrics on its own port (GATEWAY_METRICS_PORT), served by the master:
    the public port answers 404 there, so only what can reach this port
    (Prometheus, by the NetworkPolicy) reads the metrics."""
    from gateway.metrics import serve_private  # noqa: PLC0415 - after the variable is set

    serve_private(_settings.metrics_port, _settings.host)


def post_fork(server: Any, worker: Any) -> None:
    """Telemetry per worker (OTEL_*, SENTRY_DSN); channels and keys wait for first use."""
    from switchyard_kit import setup_telemetry  # noqa: PLC0415 - in the worker only

    setup_telemetry("gateway")


def post_worker_init(worker: Any) -> None:
    """Logging in JSON, admission control around the app, and on SIGTERM /readyz
    turns 503 before gunicorn stops the worker."""
    from switchyard_kit import configure_logging  # noqa: PLC0415 - see above

    from gateway.admission import AdmissionControl  # noqa: PLC0415 - the worker's, see above
    from gateway.app import mark_draining  # noqa: PLC0415 - the app loads in the worker only
    from gateway.tracing import instrument_app  # noqa: PLC0415

    configure_logging("gateway", _settings.log_level)
    previous = signal.getsignal(signal.SIGTERM)
    app = worker.wsgi
    instrument_app(app)
    # Outermost: a shed request costs no Flask dispatch, no span, no backend call.
    worker.wsgi = AdmissionControl(app, _settings.max_queue_wait_ms / 1000)

    def on_term(signum: int, frame: FrameType | None) -> None:
        # Marking readiness must never stand in the way of the shutdown itself.
        with contextlib.suppress(Exception):
            mark_draining(app)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server: Any, worker: Any) -> None:
    """Spans and errors still buffered in the worker are sent before it exits."""
    from switchyard_kit import flush_telemetry  # noqa: PLC0415

    flush_telemetry(timeout_seconds=2.0)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live-gauge files are removed from the shared metrics."""
    from prometheus_client import multiprocess  # noqa: PLC0415 - after the variable is set

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if folder and Path(folder).name.startswith("gateway-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "accesslog",
    "bind",
    "child_exit",
    "control_socket_disable",
    "errorlog",
    "graceful_timeout",
    "keepalive",
    "loglevel",
    "max_requests",
    "on_exit",
    "on_starting",
    "post_fork",
    "post_worker_init",
    "preload_app",
    "proc_name",
    "reuse_port",
    "threads",
    "timeout",
    "when_ready",
    "worker_class",
    "worker_exit",
    "worker_tmp_dir",
    "workers",
    "wsgi_app",
]
