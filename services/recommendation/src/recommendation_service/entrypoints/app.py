"""The composition root: settings -> database, cache, handlers -> the gRPC service
and the worker's consumer. The only module that builds adapters."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
from sqlalchemy.engine import make_url
from switchyard.events.v1 import events_pb2, events_pb2_grpc
from switchyard.recommendation.v1 import recommendation_pb2_grpc
from switchyard_kit import Cache, Database, GrpcService, build_cache, utc_now
from switchyard_kit.events import EVENT_SINK_SERVICE, EventConsumer, EventSinkServicer
from switchyard_kit.retention import RetentionBound, trim_dead_letters

from recommendation_service.adapters.cache import CachedRecommendations
from recommendation_service.adapters.retention import SqlEventRetention
from recommendation_service.adapters.unit_of_work import SqlModelUnitOfWork
from recommendation_service.config import RecommendationSettings
from recommendation_service.entrypoints.events import event_handler
from recommendation_service.entrypoints.grpc_servicer import SERVICE_NAME, RecommendationServicer
from recommendation_service.service_layer.handlers import (
    ModelUpdates,
    RecommendationQueries,
)
from recommendation_service.service_layer.ports import ModelUnitOfWork
from recommendation_service.service_layer.retention import EventRetention, forget_old_events

logger = logging.getLogger("recommendation")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def database_from(settings: RecommendationSettings) -> Database:
    # On SQLite, one event's read-modify-write of a user's history stays whole.
    return Database.for_service(settings, sqlite_immediate_writes=True)


def cache_namespace(database_url: str) -> str:
    """The cache's key prefix: the lists cache one database's model, so replicas
    that share the database share the entries, and nothing else does."""
    where = make_url(database_url).render_as_string(hide_password=True)
    return f"recommendation:{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def cache_from(
    settings: RecommendationSettings, cache: Cache | None = None
) -> CachedRecommendations:
    return CachedRecommendations(
        cache or build_cache(cache_namespace(settings.database_url), settings.redis_url),
        settings.cache_ttl_seconds,
        settings.popular_cache_ttl_seconds,
    )


def _dead_letter_recorder(database: Database) -> Callable[[events_pb2.Event, str], None]:
    """Broker-less path: keep what was given up on in the dead_letters table."""

    def record(event: events_pb2.Event, reason: str) -> None:
        logger.error(
            "event dead-lettered",
            extra={"event_id": event.id, "event_type": event.type, "reason": reason},
        )
        uow = SqlModelUnitOfWork(database)
        with uow:
            uow.model.record_dead_letter(
                event.id, event.type, reason, event.SerializeToString(), utc_now()
            )
            uow.commit()

    return record


def handlers_from(
    database: Database, settings: RecommendationSettings, cache: Cache | None = None
) -> tuple[RecommendationQueries, ModelUpdates]:
    """The read side (the gRPC queries) and the write side (event updates), sharing
    one cache of lists."""
    recommendations = cache_from(settings, cache)
    parameters = settings.model_parameters

    def reads(*, for_user: str | None = None) -> ModelUnitOfWork:
        return SqlModelUnitOfWork(database, read_only=True, for_user=for_user)

    def writes(*, for_user: str | None = None) -> ModelUnitOfWork:
        return SqlModelUnitOfWork(database, for_user=for_user)

    queries = RecommendationQueries(reads, recommendations, parameters)
    updates = ModelUpdates(writes, recommendations, parameters)
    return queries, updates


def grpc_service(
    database: Database, settings: RecommendationSettings, cache: Cache | None = None
) -> GrpcService:
    """What `serve` runs: RecommendationService plus the EventSinkService delivery
    endpoint (payment's relay calls it when there is no Redis)."""
    queries, updates = handlers_from(database, settings, cache)
    servicer = RecommendationServicer(queries)
    sink = EventSinkServicer(
        event_handler(updates),
        max_deliveries=settings.sink_max_deliveries,
        dead_letter=_dead_letter_recorder(database),
    )

    def register(server: grpc.Server) -> None:
        recommendation_pb2_grpc.add_RecommendationServiceServicer_to_server(servicer, server)
        events_pb2_grpc.add_EventSinkServiceServicer_to_server(sink, server)

    return GrpcService(
        name="recommendation",
        register=register,
        service_names=[SERVICE_NAME, EVENT_SINK_SERVICE],
        is_ready=database.ping,
        on_stop=database.dispose,
    )


def consumer_from(
    database: Database, settings: RecommendationSettings, cache: Cache | None = None
) -> EventConsumer:
    """The worker's consumer: RECOMMENDATION_PAYMENTS_STREAM, group RECOMMENDATION_WORKER_GROUP."""
    if not settings.redis_url:
        raise ValueError("the worker reads Redis Streams: REDIS_URL must be set")
    _, updates = handlers_from(database, settings, cache)
    return EventConsumer(
        settings.redis_url,
        settings.payments_stream,
        group=settings.worker_group,
        consumer=settings.consumer_name,
        handler=event_handler(updates),
        max_deliveries=settings.worker_max_deliveries,
        claim_idle_seconds=settings.worker_claim_idle_seconds,
        block_seconds=settings.worker_block_seconds,
        batch_size=settings.worker_batch_size,
        start_id=settings.worker_start_id,
    )


def _retention_bound(settings: RecommendationSettings) -> RetentionBound:
    return RetentionBound(settings.retention_batch_size, settings.retention_max_rows_per_run)


def cleanup_processed_events_from(
    database: Database, settings: RecommendationSettings
) -> tuple[int, int]:
    """The cleanup-processed-events job: (processed ids, dead-letter rows) deleted."""
    retention = EventRetention(
        processed_event_days=settings.processed_event_retention_days,
        dead_letter_days=settings.dead_letter_retention_days,
    )
    return forget_old_events(SqlEventRetention(database, _retention_bound(settings)), retention)


def trim_dead_letters_from(settings: RecommendationSettings) -> int:
    """The trim-dead-letters job: the worker group's dead letters (Redis stream
    events.<payments_stream>.dead-letter.<worker_group>) past their retention."""
    if not settings.redis_url:
        raise ValueError("the worker's dead letters are in Redis: REDIS_URL must be set")
    return trim_dead_letters(
        settings.redis_url,
        settings.payments_stream,
        settings.worker_group,
        retention_days=settings.dead_letter_retention_days,
        bound=_retention_bound(settings),
    )
