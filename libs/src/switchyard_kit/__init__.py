"""The Switchyard service kit: what every service and the gateway share.

Settings from the environment, the gRPC server bootstrap (health, reflection,
interceptors, graceful shutdown), client channels with deadlines and retries,
domain errors and their gRPC statuses, the database and migrations, the cache,
JSON logging (with a secret-redaction guard), Prometheus metrics, and
OpenTelemetry traces plus Sentry (`setup_telemetry`).

Importing the package is light: the domain errors and the clock (standard
library only) load at once; every other name loads its module on first use
(PEP 562 `__getattr__`), so a domain module that raises `InvalidArgument`
does not pull in grpc, SQLAlchemy, redis or OpenTelemetry. The lazy modules
are named by strings, not import statements, so import-linter sees the
package as light as it is at run time.

Example::

    from switchyard_kit import InvalidArgument, utc_now  # light
    from switchyard_kit import Database  # loads SQLAlchemy now
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from switchyard_kit._clock import utc_now
from switchyard_kit._errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from switchyard_kit._transaction import Transaction

if TYPE_CHECKING:
    from switchyard_kit._cache import Cache, InProcessCache, RedisCache, build_cache
    from switchyard_kit._channels import (
        Backend,
        DeadlineExceeded,
        outgoing_timeout,
    )
    from switchyard_kit._database import Database, SqlAlchemyUnitOfWork, UtcDateTime
    from switchyard_kit._grpc_errors import status_details, to_rpc_status
    from switchyard_kit._liveness import LIVENESS_PATH, Heartbeat, start_liveness
    from switchyard_kit._logging import (
        configure_logging,
        redact_text,
        request_id_var,
        user_id_var,
    )
    from switchyard_kit._metadata import (
        CLIENT_ADDRESS_KEY,
        IDEMPOTENCY_KEY,
        REQUEST_ID_KEY,
        SESSION_ID_KEY,
        USER_AGENT_KEY,
        USER_ID_KEY,
        caller_user_id,
        metadata_value,
    )
    from switchyard_kit._metrics import (
        start_metrics_server,
        watch_outbox_backlog,
        watch_stream_lag,
    )
    from switchyard_kit._migrations import run_migrations, upgrade_database
    from switchyard_kit._server import (
        LIVENESS_SERVICE,
        GrpcService,
        RunningServer,
        serve,
        stop_event_on_signals,
    )
    from switchyard_kit._settings import (
        CommonSettings,
        ConfigurationError,
        ServiceSettings,
        load_settings,
        require_real_secret,
    )
    from switchyard_kit._telemetry import (
        flush_telemetry,
        setup_telemetry,
        tracing_enabled,
    )

# Name -> the private module that defines it, imported on first access.
# Keep in step with the TYPE_CHECKING imports above (libs/tests/unit/test_light_import.py checks).
_LAZY: dict[str, str] = {
    "Cache": "_cache",
    "InProcessCache": "_cache",
    "RedisCache": "_cache",
    "build_cache": "_cache",
    "Backend": "_channels",
    "DeadlineExceeded": "_channels",
    "outgoing_timeout": "_channels",
    "Database": "_database",
    "SqlAlchemyUnitOfWork": "_database",
    "UtcDateTime": "_database",
    "status_details": "_grpc_errors",
    "to_rpc_status": "_grpc_errors",
    "LIVENESS_PATH": "_liveness",
    "Heartbeat": "_liveness",
    "start_liveness": "_liveness",
    "configure_logging": "_logging",
    "redact_text": "_logging",
    "request_id_var": "_logging",
    "user_id_var": "_logging",
    "CLIENT_ADDRESS_KEY": "_metadata",
    "IDEMPOTENCY_KEY": "_metadata",
    "REQUEST_ID_KEY": "_metadata",
    "SESSION_ID_KEY": "_metadata",
    "USER_AGENT_KEY": "_metadata",
    "USER_ID_KEY": "_metadata",
    "caller_user_id": "_metadata",
    "metadata_value": "_metadata",
    "start_metrics_server": "_metrics",
    "watch_outbox_backlog": "_metrics",
    "watch_stream_lag": "_metrics",
    "run_migrations": "_migrations",
    "upgrade_database": "_migrations",
    "LIVENESS_SERVICE": "_server",
    "GrpcService": "_server",
    "RunningServer": "_server",
    "serve": "_server",
    "stop_event_on_signals": "_server",
    "CommonSettings": "_settings",
    "ConfigurationError": "_settings",
    "ServiceSettings": "_settings",
    "load_settings": "_settings",
    "require_real_secret": "_settings",
    "flush_telemetry": "_telemetry",
    "setup_telemetry": "_telemetry",
    "tracing_enabled": "_telemetry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CLIENT_ADDRESS_KEY",
    "IDEMPOTENCY_KEY",
    "LIVENESS_PATH",
    "LIVENESS_SERVICE",
    "REQUEST_ID_KEY",
    "SESSION_ID_KEY",
    "USER_AGENT_KEY",
    "USER_ID_KEY",
    "Aborted",
    "AlreadyExists",
    "Backend",
    "Cache",
    "CommonSettings",
    "ConfigurationError",
    "Database",
    "DeadlineExceeded",
    "DomainError",
    "FailedPrecondition",
    "FieldViolation",
    "GrpcService",
    "Heartbeat",
    "InProcessCache",
    "InvalidArgument",
    "NotFound",
    "RedisCache",
    "ResourceExhausted",
    "RunningServer",
    "ServiceSettings",
    "SqlAlchemyUnitOfWork",
    "Transaction",
    "Unauthenticated",
    "UtcDateTime",
    "build_cache",
    "caller_user_id",
    "configure_logging",
    "flush_telemetry",
    "load_settings",
    "metadata_value",
    "outgoing_timeout",
    "redact_text",
    "request_id_var",
    "require_real_secret",
    "run_migrations",
    "serve",
    "setup_telemetry",
    "start_liveness",
    "start_metrics_server",
    "status_details",
    "stop_event_on_signals",
    "to_rpc_status",
    "tracing_enabled",
    "upgrade_database",
    "user_id_var",
    "utc_now",
    "watch_outbox_backlog",
    "watch_stream_lag",
]
