"""`python -m profile_service [serve|migrate|worker|trim-dead-letters|dead-letters]`
(console script: switchyard-profile).

dead-letters list|show ENTRY|replay ENTRY...|replay --all: the worker's dead
letters (switchyard_kit.events.DeadLetters); a replay puts an event back once.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence

from switchyard_kit import (
    serve,
    setup_telemetry,
    start_liveness,
    stop_event_on_signals,
    watch_stream_lag,
)
from switchyard_kit import upgrade_database as apply_migrations
from switchyard_kit.cli import Command, run_cli
from switchyard_kit.events import dead_letters_command

from profile_service.config import ProfileSettings
from profile_service.entrypoints.app import (
    MIGRATIONS_DIR,
    consumer_from,
    database_from,
    grpc_service,
    trim_dead_letters_from,
)
from profile_service.entrypoints.events import CONSUMER_GROUP

logger = logging.getLogger("profile")


def run_server(settings: ProfileSettings) -> int:
    setup_telemetry("profile")
    serve(grpc_service(database_from(settings), settings), settings)
    return 0


def run_migrate(settings: ProfileSettings) -> int:
    """Apply the alembic migrations to PROFILE_DATABASE_URL (the primary)."""
    apply_migrations(settings.database_url, MIGRATIONS_DIR)
    logger.info("migrations applied")
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
    database = database_from(settings)
    consumer = consumer_from(database, settings, f"{socket.gethostname()}-{os.getpid()}")
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


def run_trim_dead_letters(settings: ProfileSettings) -> int:
    """The scheduled job: forget dead letters past their retention."""
    if not settings.redis_url:
        print("switchyard-profile: the dead letters are in Redis: set REDIS_URL", file=sys.stderr)
        return 2
    print(f"trim-dead-letters: deleted {trim_dead_letters_from(settings)} dead letter(s)")
    return 0


def run_dead_letters(settings: ProfileSettings, arguments: Sequence[str]) -> int:
    """List, show or replay the worker's dead letters."""
    if not settings.redis_url:
        print("switchyard-profile: the dead letters are in Redis: set REDIS_URL", file=sys.stderr)
        return 2
    return dead_letters_command(
        "switchyard-profile", settings.redis_url, settings.users_stream, CONSUMER_GROUP, arguments
    )


def _needs_arguments(settings: ProfileSettings) -> int:
    print("switchyard-profile dead-letters: list, show ENTRY or replay ENTRY...", file=sys.stderr)
    return 2


COMMANDS = {
    "serve": Command("run the gRPC server (the default)", run_server, "profile"),
    "migrate": Command("apply database migrations", run_migrate, "profile"),
    "worker": Command(
        "consume account events from Redis (stream 'users') and create profiles",
        run_worker,
        "profile-worker",
    ),
    "trim-dead-letters": Command(
        "delete the worker's dead letters older than PROFILE_DEAD_LETTER_RETENTION_DAYS",
        run_trim_dead_letters,
        "profile",
    ),
    "dead-letters": Command(
        "list, show or replay (once) the worker's dead letters (needs REDIS_URL)",
        _needs_arguments,
        "profile",
        run_with_arguments=run_dead_letters,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        "switchyard-profile", "The Switchyard profile service.", ProfileSettings, COMMANDS, argv
    )


if __name__ == "__main__":
    sys.exit(main())
