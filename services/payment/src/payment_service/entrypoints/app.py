"""The composition root: settings -> database -> handlers -> the gRPC service, the
outbox relay and the operator commands. The only module that builds adapters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
from switchyard.payment.v1 import payment_pb2_grpc
from switchyard_kit import Database, GrpcService, utc_now
from switchyard_kit.events import EventPublisher, OutboxRelay, build_publisher

from payment_service.adapters.outbox import PAYMENT_OUTBOX
from payment_service.adapters.reconciliation import SqlLedgerAudit
from payment_service.adapters.replay_codec import JsonReplayCodec
from payment_service.adapters.shards import ShardSet
from payment_service.adapters.unit_of_work import PaymentUnitOfWork, UserUnitOfWork
from payment_service.config import PaymentSettings
from payment_service.domain.shards import SlotMap
from payment_service.entrypoints.grpc_servicer import SERVICE_NAME, PaymentServicer
from payment_service.service_layer.handlers import IdempotencySettings, PaymentHandlers
from payment_service.service_layer.operations import (
    Violation,
    cleanup_idempotency_keys,
    reconcile,
)
from payment_service.service_layer.ports import UnitOfWork

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def database_from(settings: PaymentSettings) -> Database:
    """The database of PAYMENT_DATABASE_URL (the single shard's)."""
    # On SQLite, writers take the lock at BEGIN so wallets and keys stay whole.
    return Database.for_service(settings, sqlite_immediate_writes=True)


def shards_from(settings: PaymentSettings) -> ShardSet:
    """One kit Database per shard of PAYMENT_SHARDS (or PAYMENT_DATABASE_URL
    alone: one shard), routed by the configured slot map until a shard's
    slot_ownership table says otherwise."""
    urls = settings.shard_urls
    if len(urls) == 1:
        return ShardSet({name: database_from(settings) for name in urls}, settings.slot_map)
    databases = {
        name: database_from(settings.model_copy(update={"database_url": url}))
        for name, url in urls.items()
    }
    return ShardSet(databases, settings.slot_map)


def as_shards(storage: Database | ShardSet) -> ShardSet:
    """A ShardSet: one Database is the single shard "s0" (today's deployment)."""
    if isinstance(storage, ShardSet):
        return storage
    return ShardSet({"s0": storage}, SlotMap.even(["s0"]))


def handlers_from(storage: Database | ShardSet, settings: PaymentSettings) -> PaymentHandlers:
    shards = as_shards(storage)

    def unit_of_work(user_id: str, *, read_only: bool = False) -> UnitOfWork:
        return UserUnitOfWork(shards, user_id, settings.events_stream, read_only=read_only)

    return PaymentHandlers(
        unit_of_work,
        JsonReplayCodec(),
        IdempotencySettings(
            ttl_hours=settings.idempotency_ttl_hours,
            wait_seconds=settings.idempotency_wait_seconds,
            lock_timeout_seconds=settings.lock_timeout_seconds,
        ),
    )


def grpc_service(storage: Database | ShardSet, settings: PaymentSettings) -> GrpcService:
    """What `serve` runs: the PaymentService servicer, ready when every shard answers."""
    shards = as_shards(storage)
    servicer = PaymentServicer(handlers_from(shards, settings))

    def register(server: grpc.Server) -> None:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server)

    return GrpcService(
        name="payment",
        register=register,
        service_names=[SERVICE_NAME],
        is_ready=shards.ping,
        on_stop=shards.dispose,
    )


def relay_from(database: Database, settings: PaymentSettings) -> OutboxRelay:
    """The outbox relay of one shard: Redis Streams with REDIS_URL, else the event sinks."""
    return relays_from(as_shards(database), settings)[0]


def relays_from(shards: ShardSet, settings: PaymentSettings) -> list[OutboxRelay]:
    """One outbox relay per shard, sharing one publisher (entrypoints.relay_loop runs them)."""
    publisher = build_publisher(
        settings.redis_url,
        settings.event_sink_targets,
        max_length=settings.relay_stream_max_length,
        timeout_seconds=settings.relay_publish_timeout_seconds,
    )
    return [
        payment_relay(
            database,
            publisher,
            batch_size=settings.relay_batch_size,
            poll_interval_seconds=settings.relay_poll_interval_seconds,
            max_backoff_seconds=settings.relay_max_backoff_seconds,
            retention_hours=settings.relay_retention_hours,
            name="payment.relay" if not shards.sharded else f"payment.relay.{name}",
        )
        for name, database in shards
    ]


def payment_relay(
    database: Database,
    publisher: EventPublisher | None,
    *,
    batch_size: int = 100,
    poll_interval_seconds: float = 0.5,
    max_backoff_seconds: float = 30.0,
    retention_hours: float = 168.0,
    name: str = "payment.relay",
) -> OutboxRelay:
    """The kit's relay over the payment outbox (see `switchyard_kit.events.OutboxRelay`)."""
    return OutboxRelay(
        database,
        PAYMENT_OUTBOX,
        publisher,
        batch_size=batch_size,
        poll_interval_seconds=poll_interval_seconds,
        max_backoff_seconds=max_backoff_seconds,
        retention_hours=retention_hours,
        clock=utc_now,
        name=name,
        no_publisher_hint="REDIS_URL and PAYMENT_EVENT_SINKS are empty",
    )


def reconcile_database(storage: Database | ShardSet) -> list[Violation]:
    """Every broken ledger invariant, on each shard and across them (see
    operations.reconcile)."""
    return reconcile(SqlLedgerAudit(as_shards(storage)))


def cleanup_database(
    storage: Database | ShardSet, *, batch_size: int = 1000, max_keys: int = 100_000
) -> int:
    """Delete the expired idempotency keys on every shard, at most `max_keys`
    per shard and run; how many went."""
    return sum(
        cleanup_idempotency_keys(
            _unit_of_work_on(database), batch_size=batch_size, max_keys=max_keys
        )
        for _, database in as_shards(storage)
    )


def _unit_of_work_on(database: Database) -> Callable[[], PaymentUnitOfWork]:
    """Units of work on one shard, for the jobs that go over every shard."""
    return lambda: PaymentUnitOfWork(database)
