"""The composition root: settings -> database, cache, handlers -> the gRPC service
and the event worker's consumer. The only module that builds adapters."""

from __future__ import annotations

from pathlib import Path

import grpc
from switchyard.events.v1 import events_pb2_grpc
from switchyard.profile.v1 import profile_pb2_grpc
from switchyard_kit import Cache, Database, GrpcService, build_cache
from switchyard_kit.events import EVENT_SINK_SERVICE, EventConsumer, EventSinkServicer
from switchyard_kit.retention import RetentionBound, trim_dead_letters

from profile_service.adapters.cache import ProfileCache
from profile_service.adapters.unit_of_work import sqlalchemy_unit_of_work_factory
from profile_service.config import ProfileSettings
from profile_service.entrypoints.events import CONSUMER_GROUP, user_registered_handler
from profile_service.entrypoints.grpc_servicer import SERVICE_NAME, ProfileServicer
from profile_service.service_layer.handlers import ProfileHandlers

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def database_from(settings: ProfileSettings) -> Database:
    return Database.for_service(settings)


def handlers_from(
    database: Database, settings: ProfileSettings, cache: Cache | None = None
) -> ProfileHandlers:
    profile_cache = ProfileCache(
        cache or build_cache("profile", settings.redis_url), settings.cache_ttl_seconds
    )
    return ProfileHandlers(sqlalchemy_unit_of_work_factory(database), profile_cache)


def grpc_service(
    database: Database, settings: ProfileSettings, cache: Cache | None = None
) -> GrpcService:
    """The profile service ready for `switchyard_kit.serve` (or `RunningServer` in tests).

    Besides ProfileService it serves the EventSinkService, where auth's relay
    delivers account events when there is no Redis (the broker-less path).
    Readiness follows the primary database; the cache is optional by design.
    """
    handlers = handlers_from(database, settings, cache)
    servicer = ProfileServicer(handlers)
    sink = EventSinkServicer(user_registered_handler(handlers))

    def register(server: grpc.Server) -> None:
        profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)
        events_pb2_grpc.add_EventSinkServiceServicer_to_server(sink, server)

    return GrpcService(
        name="profile",
        register=register,
        service_names=[SERVICE_NAME, EVENT_SINK_SERVICE],
        is_ready=database.ping,
        on_stop=database.dispose,
    )


def consumer_from(
    database: Database, settings: ProfileSettings, consumer_name: str
) -> EventConsumer:
    """The worker's Redis consumer of stream "users" (group "profile")."""
    if not settings.redis_url:
        raise ValueError("the event worker needs REDIS_URL")
    return EventConsumer(
        settings.redis_url,
        settings.users_stream,
        group=CONSUMER_GROUP,
        consumer=consumer_name,
        handler=user_registered_handler(handlers_from(database, settings)),
    )


def trim_dead_letters_from(settings: ProfileSettings) -> int:
    """The trim-dead-letters job: the worker's dead letters older than
    PROFILE_DEAD_LETTER_RETENTION_DAYS go (bounded per run); how many went."""
    if not settings.redis_url:
        raise ValueError("the dead letters are in Redis: REDIS_URL must be set")
    return trim_dead_letters(
        settings.redis_url,
        settings.users_stream,
        CONSUMER_GROUP,
        retention_days=settings.dead_letter_retention_days,
        bound=RetentionBound(settings.retention_batch_size, settings.retention_max_rows_per_run),
    )
