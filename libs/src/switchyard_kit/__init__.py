"""The Switchyard service kit: what every service and the gateway share.

Settings from the environment, the gRPC server bootstrap (health, reflection,
interceptors, graceful shutdown), client channels with deadlines and retries,
domain errors and their gRPC statuses, the database and migrations, the cache,
JSON logging and metrics.
"""

from switchyard_kit._cache import Cache, InProcessCache, RedisCache, build_cache
from switchyard_kit._channels import Backend, DeadlineExceeded, is_idempotent, outgoing_timeout
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
from switchyard_kit._logging import configure_logging, request_id_var, user_id_var
from switchyard_kit._metadata import (
    CLIENT_ADDRESS_KEY,
    IDEMPOTENCY_KEY,
    REQUEST_ID_KEY,
    USER_AGENT_KEY,
    USER_ID_KEY,
    caller_user_id,
    metadata_value,
)
from switchyard_kit._metrics import start_metrics_server
from switchyard_kit._migrations import run_migrations, upgrade_database
from switchyard_kit._server import LIVENESS_SERVICE, GrpcService, RunningServer, serve
from switchyard_kit._settings import (
    CommonSettings,
    ConfigurationError,
    ServiceSettings,
    load_settings,
    require_real_secret,
)

__all__ = [
    "CLIENT_ADDRESS_KEY",
    "IDEMPOTENCY_KEY",
    "LIVENESS_SERVICE",
    "REQUEST_ID_KEY",
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
    "InProcessCache",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RedisCache",
    "ResourceExhausted",
    "RunningServer",
    "ServiceSettings",
    "SqlAlchemyUnitOfWork",
    "Unauthenticated",
    "Unavailable",
    "build_cache",
    "caller_user_id",
    "configure_logging",
    "create_database_engine",
    "is_idempotent",
    "load_settings",
    "metadata_value",
    "outgoing_timeout",
    "request_id_var",
    "require_real_secret",
    "run_migrations",
    "serve",
    "start_metrics_server",
    "status_details",
    "to_rpc_status",
    "upgrade_database",
    "user_id_var",
]
