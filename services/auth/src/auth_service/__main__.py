"""`python -m auth_service [serve|migrate|relay|rotate-signing-key|cleanup-expired]`
(script `switchyard-auth`).

serve               run the gRPC server until SIGTERM (the default)
migrate             apply the database migrations up to the latest revision
relay               publish outbox events (UserRegistered) to Redis Streams or the sinks
rotate-signing-key  create a new signing key; the old one stays published until
                    every token it signed has expired
cleanup-expired     delete sessions ended more than AUTH_ENDED_SESSION_RETENTION_DAYS
                    ago and audit events older than AUTH_AUDIT_EVENT_RETENTION_DAYS
                    (a scheduled job: a CronJob in k8s, the `make run` scheduler locally)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from switchyard_kit import (
    serve,
    setup_telemetry,
    start_liveness,
    stop_event_on_signals,
    watch_outbox_backlog,
)
from switchyard_kit import upgrade_database as apply_migrations
from switchyard_kit.cli import Command, run_cli

from auth_service.config import AuthSettings
from auth_service.entrypoints.app import (
    MIGRATIONS_DIR,
    cleanup_expired_from,
    database_from,
    grpc_service,
    handlers_from,
    relay_from,
    token_lifetime,
)
from auth_service.service_layer.ports import SigningKeyUnavailable

logger = logging.getLogger("auth_service")


def run_server(settings: AuthSettings) -> int:
    setup_telemetry("auth")
    application = handlers_from(database_from(settings), settings)
    try:
        # Load (or create) the signing key now, so a wrong AUTH_SIGNING_KEY_SECRET
        # stops the process at start rather than failing every login.
        application.keys.active()
    except SigningKeyUnavailable as exc:
        logger.error("cannot start: %s", exc)
        application.close()
        return 1
    except SQLAlchemyError as exc:
        # The database may come up later: readiness stays NOT_SERVING until it does.
        logger.warning("signing key not loaded at start", extra={"error": type(exc).__name__})
    serve(grpc_service(application), settings)
    return 0


def run_migrate(settings: AuthSettings) -> int:
    apply_migrations(settings.database_url, MIGRATIONS_DIR)
    logger.info("database migrated")
    return 0


def run_relay(settings: AuthSettings) -> int:
    setup_telemetry("auth-relay")
    database = database_from(settings)
    relay = relay_from(database, settings)
    # Unsent rows and the oldest one's age on /metrics (the liveness port):
    # alert SwitchyardAuthOutboxBacklog.
    watch_outbox_backlog(database.engine, name="auth")
    stop = stop_event_on_signals()
    heartbeat = start_liveness(
        settings.liveness_port, settings.host, settings.liveness_max_age_seconds
    )
    relay.run(stop, heartbeat=heartbeat)
    database.dispose()
    return 0


def rotate_signing_key(settings: AuthSettings) -> int:
    application = handlers_from(database_from(settings), settings)
    try:
        rotation = application.keys.rotate(token_lifetime(settings))
    except SigningKeyUnavailable as exc:
        logger.error("cannot rotate: %s", exc)
        return 1
    finally:
        application.close()
    print(
        f"new signing key {rotation.kid}; previous key(s) "
        f"{', '.join(rotation.previous_kids) or '(none)'} published until "
        f"{rotation.retire_at.isoformat()}"
    )
    return 0


def run_cleanup_expired(settings: AuthSettings) -> int:
    database = database_from(settings)
    deleted = cleanup_expired_from(database, settings)
    database.dispose()
    print(
        f"cleanup-expired: deleted {deleted['sessions']} ended session(s), "
        f"{deleted['audit_events']} audit event(s)"
    )
    return 0


COMMANDS = {
    "serve": Command("run the gRPC server until SIGTERM (the default)", run_server, "auth"),
    "migrate": Command("apply the database migrations", run_migrate, "auth"),
    "relay": Command(
        "publish outbox events (UserRegistered) to Redis Streams or the sinks",
        run_relay,
        "auth-relay",
    ),
    "rotate-signing-key": Command(
        "create a new signing key; the old one stays published until every token "
        "it signed has expired",
        rotate_signing_key,
        "auth",
    ),
    "cleanup-expired": Command(
        "delete ended sessions and audit events past their retention",
        run_cleanup_expired,
        "auth",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("auth_service", "The Switchyard auth service.", AuthSettings, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
