"""The Switchyard service kit: what every service and the gateway share.

Settings from the environment, the gRPC server bootstrap (health, reflection,
interceptors, graceful shutdown), client channels with deadlines and retries,
domain errors and their gRPC statuses, the database and migrations, the cache,
JSON logging (with a secret-redaction guard), Prometheus metrics, and
OpenTelemetry traces plus Sentry (`setup_telemetry`).
"""

from switchyard_kit._cache import Cache, InProcessCache, RedisCache, build_cache
from switchyard_kit._channels import (
    Backend,
    DeadlineExceeded,
    is_idempotent,
    outgoing_timeout,
    remaining_inbound_seconds,
)
from switchyard_kit._database import Database, SqlAlchemyUnitOfWork, create_database_engine
from switchyard_kit._errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from switchyard_kit._grpc_errors import status_details, to_rpc_status
from switchyard_kit._liveness import LIVENESS_PATH, Heartbeat, start_liveness
from switchyard_kit._logging import configure_logging, redact_text, request_id_var, user_id_var
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
    track_pool,
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
    Telemetry,
    flush_telemetry,
    setup_telemetry,
    tracing_enabled,
)

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
    "PermissionDenied",
    "RedisCache",
    "ResourceExhausted",
    "RunningServer",
    "ServiceSettings",
    "SqlAlchemyUnitOfWork",
    "Telemetry",
    "Unauthenticated",
    "Unavailable",
    "build_cache",
    "caller_user_id",
    "configure_logging",
    "create_database_engine",
    "flush_telemetry",
    "is_idempotent",
    "load_settings",
    "metadata_value",
    "outgoing_timeout",
    "redact_text",
    "remaining_inbound_seconds",
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
    "track_pool",
    "upgrade_database",
    "user_id_var",
    "watch_outbox_backlog",
    "watch_stream_lag",
]
