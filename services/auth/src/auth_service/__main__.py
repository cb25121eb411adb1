"""`python -m auth_service [migrate|serve]` (also the `switchyard-auth` script).

migrate  apply the database migrations up to the latest revision
serve    run the gRPC server until SIGTERM (the default)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from switchyard_kit import (
    ConfigurationError,
    configure_logging,
    load_settings,
    serve,
    setup_telemetry,
)
from switchyard_kit import upgrade_database as apply_migrations

from auth_service.bootstrap import MIGRATIONS_DIR, build_application
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="auth_service", description="The Switchyard auth service."
    )
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "migrate"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(AuthSettings)
    except ConfigurationError as exc:
        print(f"auth: {exc}", file=sys.stderr)
        return 2
    configure_logging("auth", settings.log_level)
    if args.command == "migrate":
        upgrade_database(settings)
        logger.info("database migrated")
        return 0
    return run_server(settings)


if __name__ == "__main__":
    raise SystemExit(main())
