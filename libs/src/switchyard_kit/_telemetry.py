"""OpenTelemetry traces and Sentry errors for one process.

Configured only by the standard variables: `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_PROTOCOL`,
`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*`,
`OTEL_PROPAGATORS`, `OTEL_SDK_DISABLED`; and `SENTRY_DSN`,
`SENTRY_ENVIRONMENT`, `SENTRY_RELEASE` for Sentry.

With no exporter configured, spans are still made (trace and span ids reach
the logs and the W3C `traceparent` reaches the next service) but nothing is
exported and nothing fails. gRPC spans come from the kit's own server and
channel interceptors, SQL spans from the tracer every kit engine gets (all
installed unless `OTEL_SDK_DISABLED` is true, recording once a provider is
set); Redis spans from the Redis instrumentation, switched on here. Call `setup_telemetry` once per
process before the database is built; under gunicorn, in `post_fork`, since
the span exporter's thread must belong to the worker, not the master.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from switchyard_kit._logging import redact_text

logger = logging.getLogger("switchyard.telemetry")

_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Telemetry:
    """What `setup_telemetry` switched on in this process."""

    service: str
    pid: int
    tracing: bool
    exporters: tuple[str, ...]
    sentry: bool
    tracer_provider: TracerProvider | None = None

    def flush(self, timeout_seconds: float = 5.0) -> None:
        """Export what is buffered (called before the process exits)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(int(timeout_seconds * 1000))
        if self.sentry:
            import sentry_sdk  # noqa: PLC0415 - only when Sentry is on

            sentry_sdk.flush(timeout=timeout_seconds)


_current: Telemetry | None = None
_lock = threading.Lock()


def exporter_names(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The span exporters the variables ask for.

    `OTEL_TRACES_EXPORTER` wins when set (`otlp`, `console`, `none`, comma
    separated); otherwise OTLP when an OTLP endpoint is set, else none. (The
    SDK's own default would be OTLP to localhost, which fails on every export
    where no collector runs: "no exporter configured" means no export here.)
    """
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if named:
        names = tuple(n.strip().lower() for n in named.split(",") if n.strip())
        return tuple(n for n in names if n != "none")
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        return ("otlp",)
    return ()


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    # The exporters read their endpoint, headers, timeout and compression
    # from the OTEL_EXPORTER_OTLP_* variables themselves.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    if protocol != "http/protobuf":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (grpc, http/protobuf)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _span_exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "otlp":
        return _otlp_exporter(environ)
    if name == "console":
        return ConsoleSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported (otlp, console, none)")


def _resource(service: str, environ: Mapping[str, str]) -> Resource:
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    attributes: dict[str, Any] = {}
    if not environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = f"switchyard-{service}"
    attributes.setdefault("deployment.environment", environ.get("SWITCHYARD_ENV", "development"))
    return Resource.create(attributes)


def _scrub_event(event: Any, _hint: Any) -> Any:
    """Sentry's before_send: card numbers and tokens never leave the process."""
    if isinstance(event, dict):
        message = event.get("logentry") or {}
        if isinstance(message, dict):
            for key in ("message", "formatted"):
                if isinstance(message.get(key), str):
                    message[key] = redact_text(message[key])
        for exception in (event.get("exception") or {}).get("values") or ():
            if isinstance(exception, dict) and isinstance(exception.get("value"), str):
                exception["value"] = redact_text(exception["value"])
    return event


def _setup_sentry(service: str, environ: Mapping[str, str]) -> bool:
    dsn = environ.get("SENTRY_DSN", "").strip()
    if not dsn:
        return False
    import sentry_sdk  # noqa: PLC0415 - only when Sentry is on

    sentry_sdk.init(
        dsn=dsn,
        environment=environ.get("SENTRY_ENVIRONMENT") or environ.get("SWITCHYARD_ENV"),
        release=environ.get("SENTRY_RELEASE") or None,
        server_name=service,
        # Traces go to OpenTelemetry; Sentry gets errors only, without PII.
        traces_sample_rate=None,
        send_default_pii=False,
        before_send=_scrub_event,
    )
    sentry_sdk.set_tag("service", service)
    return True


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when `OTEL_SDK_DISABLED` is true: then no instrumentation is
    installed at all (the kit's gRPC interceptors, SQL and Flask hooks), since
    even non-recording spans cost a few percent of every request."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() not in _TRUE


def setup_telemetry(
    service: str,
    environ: Mapping[str, str] | None = None,
    *,
    span_exporter: SpanExporter | None = None,
) -> Telemetry:
    """Switch on tracing (and Sentry when SENTRY_DSN is set) for this process.

    Idempotent per process; a bad OTEL_* value fails here, naming it.

    Example::

        configure_logging("profile", settings.log_level)
        setup_telemetry("profile")           # before the Database is built
        serve(grpc_service(database_from(settings), settings), settings)
    """
    global _current  # noqa: PLW0603 - one telemetry set-up per process
    env = os.environ if environ is None else environ
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            return _current
        disabled = not tracing_enabled(env)
        provider: TracerProvider | None = None
        names: tuple[str, ...] = ()
        if not disabled:
            names = exporter_names(env)
            exporters = [_span_exporter(name, env) for name in names]
            if span_exporter is not None:
                exporters.append(span_exporter)
                names = (*names, type(span_exporter).__name__)
            # The sampler comes from OTEL_TRACES_SAMPLER(_ARG) inside TracerProvider.
            provider = TracerProvider(resource=_resource(service, env))
            for exporter in exporters:
                provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            if not RedisInstrumentor().is_instrumented_by_opentelemetry:
                RedisInstrumentor().instrument(tracer_provider=provider)
        sentry = _setup_sentry(service, env)
        _current = Telemetry(service, os.getpid(), provider is not None, names, sentry, provider)
    logger.info(
        "telemetry configured",
        extra={"tracing": _current.tracing, "exporters": list(names), "sentry": sentry},
    )
    return _current


def flush_telemetry(timeout_seconds: float = 5.0) -> None:
    """Export buffered spans and errors; a no-op when nothing was set up."""
    current = _current
    if current is not None and current.pid == os.getpid():
        try:
            current.flush(timeout_seconds)
        except Exception:
            logger.warning("telemetry flush failed", exc_info=True)
