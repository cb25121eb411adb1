"""Bootstrap of a gRPC service process: health, reflection, interceptors,
readiness that follows the database, and a graceful SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor

from switchyard_kit._interceptor import ServiceInterceptor
from switchyard_kit._metrics import start_metrics_server
from switchyard_kit._settings import ServiceSettings
from switchyard_kit._telemetry import flush_telemetry, tracing_enabled

logger = logging.getLogger("switchyard.server")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# Liveness is reported under its own health service name so a probe can ask
# "is the process alive" apart from "is it ready" (the empty name, which
# follows the database). A database outage must not restart every pod.
LIVENESS_SERVICE = "liveness"


_UNTRACED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def _traced(details: grpc.HandlerCallDetails) -> bool:
    """Probes and reflection make no spans. A plain prefix test: OpenTelemetry's
    composable `filters` cost ~5% of a cached read in isinstance checks."""
    return not details.method.startswith(_UNTRACED_PREFIXES)


def _interceptors(service_name: str) -> list[grpc.ServerInterceptor[Any, Any]]:
    # The tracing interceptor is outermost so its span is current in ours
    # (trace ids in the RPC's logs); none at all when tracing is disabled.
    tracing = [server_interceptor(filter_=_traced)] if tracing_enabled() else []  # type: ignore[no-untyped-call]
    return [*tracing, ServiceInterceptor(service_name)]


def server_options(settings: ServiceSettings) -> list[tuple[str, int]]:
    """Channel arguments for a service's server: explicit limits and keepalive."""
    age_ms = int(settings.max_connection_age_seconds * 1000)
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Old connections are closed so clients re-resolve and spread over new pods.
        ("grpc.max_connection_age_ms", age_ms),
        ("grpc.max_connection_age_grace_ms", int(settings.grace_seconds * 1000)),
    ]


@dataclass
class GrpcService:
    """What a service contributes to the shared bootstrap.

    `register` adds the servicers to the server; `service_names` are their full
    proto names (for health and reflection); `is_ready` answers whether the
    service's hard dependencies (its database) respond.
    """

    name: str
    register: Callable[[grpc.Server], None]
    service_names: Sequence[str]
    is_ready: Callable[[], bool]
    on_stop: Callable[[], None] = field(default=lambda: None)


class RunningServer:
    """A started server; `stop()` drains it the way SIGTERM does."""

    def __init__(self, service: GrpcService, settings: ServiceSettings) -> None:
        self.service = service
        self.settings = settings
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=settings.max_workers, thread_name_prefix=f"{service.name}-rpc"
            ),
            interceptors=_interceptors(service.name),
            options=server_options(settings),
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        service.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*service.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(settings.bind_address)
        if self.port == 0:
            raise RuntimeError(f"cannot bind {settings.bind_address}")
        self._stopping = threading.Event()
        self._readiness_thread = threading.Thread(
            target=self._follow_readiness, name=f"{service.name}-readiness", daemon=True
        )

    def start(self) -> None:
        self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        self._set_ready(self._check_ready())
        self.server.start()
        self._readiness_thread.start()
        logger.info("serving", extra={"address": self.settings.bind_address, "port": self.port})

    def _check_ready(self) -> bool:
        try:
            return self.service.is_ready()
        except Exception:
            logger.exception("readiness check failed")
            return False

    def _set_ready(self, ready: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service.service_names):
            self.health.set(name, status)

    def _follow_readiness(self) -> None:
        was_ready: bool | None = None
        while not self._stopping.wait(self.settings.readiness_interval_seconds):
            ready = self._check_ready()
            if ready != was_ready:
                logger.info("readiness changed", extra={"ready": ready})
                was_ready = ready
            if not self._stopping.is_set():
                self._set_ready(ready)

    def stop(self) -> None:
        """NOT_SERVING everywhere, a pause for load balancers, then drain."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        logger.info("draining", extra={"grace_seconds": self.settings.grace_seconds})
        self.health.enter_graceful_shutdown()
        if self.settings.shutdown_delay_seconds:
            threading.Event().wait(self.settings.shutdown_delay_seconds)
        self.server.stop(self.settings.grace_seconds).wait()
        self.service.on_stop()
        logger.info("stopped")

    def wait(self) -> None:
        self.server.wait_for_termination()


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the stop flag of a worker or relay loop.

    Example::

        stop = stop_event_on_signals()
        consumer.run(stop)          # returns once SIGTERM arrives
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal received", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def serve(service: GrpcService, settings: ServiceSettings) -> None:
    """Run `service` until SIGTERM or SIGINT, then drain and return.

    Example::

        serve(GrpcService("profile", register, [SERVICE_NAME], database.ping), settings)
    """
    start_metrics_server(settings.metrics_port, settings.host)
    running = RunningServer(service, settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal received", extra={"signal": signal.Signals(signum).name})
        threading.Thread(target=running.stop, name="shutdown").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.start()
    running.wait()
    flush_telemetry()
