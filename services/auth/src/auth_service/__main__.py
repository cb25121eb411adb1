"""`python -m auth_service [serve|migrate|relay|rotate-signing-key]` (script `switchyard-auth`).

serve               run the gRPC server until SIGTERM (the default)
migrate             apply the database migrations up to the latest revision
relay               publish outbox events (UserRegistered) to Redis Streams or the sinks
rotate-signing-key  create a new signing key; the old one stays published until
                    every token it signed has expired
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from switchyard_kit import (
    ConfigurationError,
    Database,
    configure_logging,
    load_settings,
    serve,
    setup_telemetry,
    start_liveness,
    stop_event_on_signals,
)
from switchyard_kit import upgrade_database as apply_migrations

from auth_service.bootstrap import (
    MIGRATIONS_DIR,
    build_application,
    relay_from,
    token_lifetime,
)
from auth_service.config import AuthSettings
from auth_service.entrypoints.server import grpc_service
from auth_service.service_layer.ports import SigningKeyUnavailable

logger = logging.getLogger("auth_service")


def upgrade_database(settings: AuthSettings) -> None:
    """Apply every migration not yet applied to the auth database."""
    apply_migrations(settings.database_url, MIGRATIONS_DIR)


def run_server(settings: AuthSettings) -> int:
    setup_telemetry("auth")
    application = build_application(settings)
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


def run_relay(settings: AuthSettings) -> int:
    setup_telemetry("auth-relay")
    database = Database.for_service(settings)
    relay = relay_from(database, settings)
    stop = stop_event_on_signals()
    heartbeat = start_liveness(
        settings.liveness_port, settings.host, settings.liveness_max_age_seconds
    )
    relay.run(stop, heartbeat=heartbeat)
    database.dispose()
    return 0


def rotate_signing_key(settings: AuthSettings) -> int:
    application = build_application(settings)
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


COMMANDS = ("serve", "migrate", "relay", "rotate-signing-key")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="auth_service",
        description="The Switchyard auth service.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("command", nargs="?", default="serve", choices=COMMANDS)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(AuthSettings)
    except ConfigurationError as exc:
        print(f"auth: {exc}", file=sys.stderr)
        return 2
    configure_logging("auth-relay" if args.command == "relay" else "auth", settings.log_level)
    if args.command == "migrate":
        upgrade_database(settings)
        logger.info("database migrated")
        return 0
    if args.command == "relay":
        return run_relay(settings)
    if args.command == "rotate-signing-key":
        return rotate_signing_key(settings)
    return run_server(settings)


if __name__ == "__main__":
    raise SystemExit(main())
