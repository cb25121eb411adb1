"""`python -m recommendation_service [serve|migrate|worker|cleanup-processed-events|
trim-dead-letters|dead-letters]`.

dead-letters list|show ENTRY|replay ENTRY...|replay --all: the worker group's
dead letters (switchyard_kit.events.DeadLetters); a replay puts an event back once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from switchyard_kit import (
    serve,
    setup_telemetry,
    start_liveness,
    start_metrics_server,
    stop_event_on_signals,
    watch_stream_lag,
)
from switchyard_kit import upgrade_database as apply_migrations
from switchyard_kit.cli import Command, run_cli
from switchyard_kit.events import dead_letters_command

from recommendation_service.config import RecommendationSettings
from recommendation_service.entrypoints.app import (
    MIGRATIONS_DIR,
    cleanup_processed_events_from,
    consumer_from,
    database_from,
    grpc_service,
    trim_dead_letters_from,
)
from recommendation_service.entrypoints.events import run_worker

logger = logging.getLogger("recommendation")


def _serve(settings: RecommendationSettings) -> int:
    setup_telemetry("recommendation")
    serve(grpc_service(database_from(settings), settings), settings)
    return 0


def _migrate(settings: RecommendationSettings) -> int:
    apply_migrations(settings.database_url, MIGRATIONS_DIR)
    logger.info("migrations applied")
    return 0


def _worker(settings: RecommendationSettings) -> int:
    if not settings.redis_url:
        print(
            "recommendation worker: REDIS_URL is not set. Without Redis the payment relay "
            "delivers events to the recommendation server itself (EventSinkService; "
            "PAYMENT_EVENT_SINKS), so no worker is needed.",
            file=sys.stderr,
        )
        return 2
    setup_telemetry("recommendation-worker")
    start_metrics_server(settings.metrics_port, settings.host)
    database = database_from(settings)
    consumer = consumer_from(database, settings)
    watch_stream_lag(settings.redis_url, consumer.stream, consumer.group)
    stop = stop_event_on_signals()
    heartbeat = start_liveness(
        settings.liveness_port, settings.host, settings.liveness_max_age_seconds
    )
    run_worker(consumer, stop, heartbeat)
    database.dispose()
    return 0


def _cleanup_processed_events(settings: RecommendationSettings) -> int:
    database = database_from(settings)
    processed, dead = cleanup_processed_events_from(database, settings)
    database.dispose()
    print(f"cleanup-processed-events: deleted {processed} event id(s), {dead} dead letter(s)")
    return 0


def _trim_dead_letters(settings: RecommendationSettings) -> int:
    if not settings.redis_url:
        print(
            "recommendation: the worker's dead letters are in Redis: set REDIS_URL", file=sys.stderr
        )
        return 2
    print(f"trim-dead-letters: deleted {trim_dead_letters_from(settings)} dead letter(s)")
    return 0


def _dead_letters(settings: RecommendationSettings, arguments: Sequence[str]) -> int:
    if not settings.redis_url:
        print(
            "switchyard-recommendation: the dead letters are in Redis: set REDIS_URL",
            file=sys.stderr,
        )
        return 2
    return dead_letters_command(
        "switchyard-recommendation",
        settings.redis_url,
        settings.payments_stream,
        settings.worker_group,
        arguments,
    )


def _dead_letters_usage(settings: RecommendationSettings) -> int:
    print(
        "switchyard-recommendation dead-letters: list, show ENTRY or replay ENTRY...",
        file=sys.stderr,
    )
    return 2


COMMANDS = {
    "serve": Command(
        "run the gRPC server (the default); it also takes broker-less event deliveries",
        _serve,
        "recommendation",
    ),
    "migrate": Command("apply the database migrations", _migrate, "recommendation"),
    "worker": Command(
        "consume payment events from Redis Streams (needs REDIS_URL)",
        _worker,
        "recommendation-worker",
    ),
    "cleanup-processed-events": Command(
        "delete processed event ids and broker-less dead letters past their retention",
        _cleanup_processed_events,
        "recommendation",
    ),
    "trim-dead-letters": Command(
        "delete the worker's dead letters (Redis) older than the retention (needs REDIS_URL)",
        _trim_dead_letters,
        "recommendation",
    ),
    "dead-letters": Command(
        "list, show or replay (once) the worker's dead letters (needs REDIS_URL)",
        _dead_letters_usage,
        "recommendation",
        run_with_arguments=_dead_letters,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("recommendation_service", __doc__, RecommendationSettings, COMMANDS, argv)


def worker_main() -> int:
    """The `recommendation-worker` console script."""
    return main(["worker"])


if __name__ == "__main__":
    raise SystemExit(main())
