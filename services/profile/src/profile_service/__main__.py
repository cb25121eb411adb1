"""`python -m profile_service [serve|migrate|worker]` (console script: switchyard-profile)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence

from switchyard_kit import (
    ConfigurationError,
    Database,
    configure_logging,
    serve,
    setup_telemetry,
    start_liveness,
    stop_event_on_signals,
    watch_stream_lag,
)

from profile_service.config import ProfileSettings, load_profile_settings
from profile_service.entrypoints.application import (
    build_consumer,
    build_handlers,
    build_service,
    migrate,
)

logger = logging.getLogger("profile")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchyard-profile", description="The Switchyard profile service."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "migrate", "worker"),
        help="serve: run the gRPC server (default); migrate: apply database migrations; "
        "worker: consume account events from Redis (stream 'users') and create profiles",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_profile_settings()
    except ConfigurationError as exc:
        print(f"switchyard-profile: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        "profile-worker" if args.command == "worker" else "profile", settings.log_level
    )
    if args.command == "worker":
        return run_worker(settings)
    if args.command == "migrate":
        migrate(settings)
        logger.info("migrations applied")
        return 0
    setup_telemetry("profile")
    serve(build_service(settings), settings)
    return 0


def run_worker(settings: ProfileSettings) -> int:
    """Consume UserRegistered events from Redis until SIGTERM."""
    if not settings.redis_url:
        print(
            "switchyard-profile: the worker needs REDIS_URL; without Redis, auth's relay "
            "delivers events to the profile gRPC server instead",
            file=sys.stderr,
        )
        return 2
    setup_telemetry("profile-worker")
    database = Database.for_service(settings)
    consumer = build_consumer(
        settings, build_handlers(settings, database), f"{socket.gethostname()}-{os.getpid()}"
    )
    watch_stream_lag(settings.redis_url, consumer.stream, consumer.group)
    stop = stop_event_on_signals()
    heartbeat = start_liveness(
        settings.liveness_port, settings.host, settings.liveness_max_age_seconds
    )
    logger.info("event worker started", extra={"stream": consumer.stream, "group": consumer.group})
    consumer.run(stop, heartbeat=heartbeat)
    consumer.close()
    database.dispose()
    logger.info("event worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
