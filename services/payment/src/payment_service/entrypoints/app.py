"""The composition root: settings -> database -> handlers -> the gRPC service, the
outbox relay and the operator commands. The only module that builds adapters."""

from __future__ import annotations

from pathlib import Path

import grpc
from switchyard.payment.v1 import payment_pb2_grpc
from switchyard_kit import Database, GrpcService, utc_now
from switchyard_kit.events import EventPublisher, OutboxRelay, build_publisher

from payment_service.adapters.outbox import PAYMENT_OUTBOX
from payment_service.adapters.reconciliation import SqlLedgerAudit
from payment_service.adapters.replay_codec import JsonReplayCodec
from payment_service.adapters.unit_of_work import PaymentUnitOfWork
from payment_service.config import PaymentSettings
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
    # On SQLite, writers take the lock at BEGIN so wallets and keys stay whole.
    return Database.for_service(settings, sqlite_immediate_writes=True)


def handlers_from(database: Database, settings: PaymentSettings) -> PaymentHandlers:
    def unit_of_work(*, read_only: bool = False, for_user: str | None = None) -> UnitOfWork:
        return PaymentUnitOfWork(
            database, settings.events_stream, read_only=read_only, for_user=for_user
        )

    return PaymentHandlers(
        unit_of_work,
        JsonReplayCodec(),
        IdempotencySettings(
            ttl_hours=settings.idempotency_ttl_hours,
            wait_seconds=settings.idempotency_wait_seconds,
            lock_timeout_seconds=settings.lock_timeout_seconds,
        ),
    )


def grpc_service(database: Database, settings: PaymentSettings) -> GrpcService:
    """What `serve` runs: the PaymentService servicer, ready when the database answers."""
    servicer = PaymentServicer(handlers_from(database, settings))

    def register(server: grpc.Server) -> None:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server)

    return GrpcService(
        name="payment",
        register=register,
        service_names=[SERVICE_NAME],
        is_ready=database.ping,
        on_stop=database.dispose,
    )


def relay_from(database: Database, settings: PaymentSettings) -> OutboxRelay:
    """The outbox relay: Redis Streams with REDIS_URL, else the event sinks."""
    publisher = build_publisher(
        settings.redis_url,
        settings.event_sink_targets,
        max_length=settings.relay_stream_max_length,
        timeout_seconds=settings.relay_publish_timeout_seconds,
    )
    return payment_relay(
        database,
        publisher,
        batch_size=settings.relay_batch_size,
        poll_interval_seconds=settings.relay_poll_interval_seconds,
        max_backoff_seconds=settings.relay_max_backoff_seconds,
        retention_hours=settings.relay_retention_hours,
    )


def payment_relay(
    database: Database,
    publisher: EventPublisher | None,
    *,
    batch_size: int = 100,
    poll_interval_seconds: float = 0.5,
    max_backoff_seconds: float = 30.0,
    retention_hours: float = 168.0,
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
        name="payment.relay",
        no_publisher_hint="REDIS_URL and PAYMENT_EVENT_SINKS are empty",
    )


def reconcile_database(database: Database) -> list[Violation]:
    """Every broken ledger invariant in `database` (see operations.reconcile)."""
    return reconcile(SqlLedgerAudit(database))


def cleanup_database(database: Database, *, batch_size: int = 1000, max_keys: int = 100_000) -> int:
    """Delete the expired idempotency keys in `database` (one database: run it
    per shard), at most `max_keys` per run; how many went."""
    return cleanup_idempotency_keys(
        lambda: PaymentUnitOfWork(database), batch_size=batch_size, max_keys=max_keys
    )
