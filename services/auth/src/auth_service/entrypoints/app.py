"""The composition root: settings -> database, adapters, use cases -> the gRPC
service and the outbox relay. The only module that builds adapters."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
from switchyard.auth.v1 import auth_pb2_grpc
from switchyard_kit import Database, GrpcService, utc_now
from switchyard_kit.events import OutboxRelay, SqlOutbox, build_publisher
from switchyard_kit.retention import RetentionBound

from auth_service.adapters.hashing import Argon2PasswordHasher
from auth_service.adapters.profiles import GrpcProfileDirectory
from auth_service.adapters.retention import SqlRetentionStore
from auth_service.adapters.revocations import NoRevocationPublisher, RedisRevocationPublisher
from auth_service.adapters.signing import Ed25519JwtSigner, FernetKeyVault, PlaintextKeyVault
from auth_service.adapters.tables import outbox
from auth_service.adapters.throttling import (
    FallbackAttemptStore,
    InProcessAttemptStore,
    RedisAttemptStore,
)
from auth_service.adapters.unit_of_work import AuthUnitOfWork
from auth_service.config import SECRET_VARIABLE, AuthSettings
from auth_service.domain.tokens import TokenPolicy
from auth_service.entrypoints.grpc_servicer import SERVICE_NAME, AuthServicer
from auth_service.service_layer.handlers import AuthService
from auth_service.service_layer.hashing_pool import BoundedHasher
from auth_service.service_layer.keys import KeyRing
from auth_service.service_layer.ports import AttemptStore, KeyVault, RevocationPublisher
from auth_service.service_layer.retention import RetentionPolicy, cleanup_expired
from auth_service.service_layer.revocations import Revocations
from auth_service.service_layer.throttle import LoginThrottle, ThrottlePolicy

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

AUTH_OUTBOX = SqlOutbox(outbox)


@dataclass
class AuthApplication:
    """Everything a running auth process holds."""

    settings: AuthSettings
    database: Database
    auth: AuthService
    keys: KeyRing
    revocations: Revocations
    closers: list[object] = field(default_factory=list)

    def close(self) -> None:
        """Close the Redis clients and the connection pools (on shutdown)."""
        for closer in self.closers:
            close = getattr(closer, "close", None)
            if callable(close):
                close()
        self.database.dispose()


def key_vault(settings: AuthSettings) -> KeyVault:
    """Fernet with the configured secret; in development without one, no
    encryption (settings refuse a missing secret anywhere else)."""
    if settings.signing_key_secrets:
        return FernetKeyVault(settings.signing_key_secrets)
    logger.warning(
        "signing keys are stored unencrypted: set %s outside local development", SECRET_VARIABLE
    )
    return PlaintextKeyVault()


def throttle_policy(settings: AuthSettings) -> ThrottlePolicy:
    return ThrottlePolicy(
        account_address_free_failures=settings.login_account_address_free_failures,
        address_free_failures=settings.login_address_free_failures,
        account_free_failures=settings.login_account_free_failures,
        backoff_base_seconds=settings.login_backoff_base_seconds,
        backoff_max_seconds=settings.login_backoff_max_seconds,
        failure_window_seconds=settings.login_failure_window_seconds,
        known_address_seconds=settings.login_known_address_seconds,
    )


def database_from(settings: AuthSettings) -> Database:
    return Database.for_service(settings)


def handlers_from(
    database: Database,
    settings: AuthSettings,
    *,
    attempts: AttemptStore | None = None,
    revocation_publisher: RevocationPublisher | None = None,
) -> AuthApplication:
    """The auth use cases on `database`. Redis (REDIS_URL) holds the login
    counters and the revoked-session set; without it, counters are in-process
    and gateways poll ListRevokedSessions. `attempts` and
    `revocation_publisher` replace those adapters (tests)."""

    def uow_factory() -> AuthUnitOfWork:
        return AuthUnitOfWork(database, settings.users_stream)

    closers: list[object] = []
    if attempts is None:
        if settings.redis_url:
            redis_store = RedisAttemptStore(settings.redis_url)
            closers.append(redis_store)
            attempts = FallbackAttemptStore(redis_store, InProcessAttemptStore())
        else:
            attempts = InProcessAttemptStore()
    if revocation_publisher is None:
        if settings.redis_url:
            redis_publisher = RedisRevocationPublisher(
                settings.redis_url, ttl_seconds=settings.revocation_lifetime_seconds
            )
            closers.append(redis_publisher)
            revocation_publisher = redis_publisher
        else:
            revocation_publisher = NoRevocationPublisher()

    profiles = GrpcProfileDirectory(
        settings.profile_target, settings.profile_create_timeout_seconds
    )
    closers.append(profiles)
    signer = Ed25519JwtSigner()
    keys = KeyRing(
        uow_factory,
        signer,
        key_vault(settings),
        clock=utc_now,
        cache_seconds=settings.signing_key_cache_seconds,
    )
    revocations = Revocations(
        uow_factory,
        revocation_publisher,
        clock=utc_now,
        lookback=timedelta(seconds=settings.revocation_lifetime_seconds),
    )
    argon2 = Argon2PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
    )
    # Made now, outside the pool's bound, rather than by the first login.
    _ = argon2.dummy_hash
    auth = AuthService(
        uow_factory,
        hasher=BoundedHasher(
            argon2,
            workers=settings.hashing_workers,
            queue=settings.hashing_queue,
            queue_timeout_seconds=settings.hashing_queue_timeout_seconds,
        ),
        signer=signer,
        keys=keys,
        token_policy=TokenPolicy(
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            refresh_idle_ttl=timedelta(seconds=settings.refresh_token_idle_timeout_seconds),
            reuse_overlap=timedelta(seconds=settings.refresh_reuse_overlap_seconds),
        ),
        throttle=LoginThrottle(attempts, throttle_policy(settings)),
        revocations=revocations,
        profiles=profiles,
    )
    return AuthApplication(settings, database, auth, keys, revocations, closers)


def token_lifetime(settings: AuthSettings) -> timedelta:
    """How long after signing a token can still verify (TTL + leeway)."""
    return timedelta(seconds=settings.access_token_ttl_seconds + settings.token_leeway_seconds)


def relay_from(database: Database, settings: AuthSettings) -> OutboxRelay:
    """The outbox relay: Redis Streams with REDIS_URL, else the event sinks."""
    publisher = build_publisher(
        settings.redis_url,
        settings.event_sink_targets,
        max_length=settings.relay_stream_max_length,
        timeout_seconds=settings.relay_publish_timeout_seconds,
    )
    return OutboxRelay(
        database,
        AUTH_OUTBOX,
        publisher,
        batch_size=settings.relay_batch_size,
        poll_interval_seconds=settings.relay_poll_interval_seconds,
        max_backoff_seconds=settings.relay_max_backoff_seconds,
        retention_hours=settings.relay_retention_hours,
        clock=utc_now,
        name="auth.relay",
        no_publisher_hint="REDIS_URL and AUTH_EVENT_SINKS are empty",
    )


def grpc_service(application: AuthApplication) -> GrpcService:
    """What `switchyard_kit.serve` (or `RunningServer` in tests) runs.
    Ready when the database answers. A background thread republishes
    revocations Redis missed (see service_layer.revocations)."""
    stop = threading.Event()
    resync = threading.Thread(
        target=application.revocations.run, args=(stop,), name="revocation-resync", daemon=True
    )

    def register(server: grpc.Server) -> None:
        servicer = AuthServicer(
            application.auth,
            application.keys,
            int(token_lifetime(application.settings).total_seconds()),
        )
        auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
        if application.settings.redis_url:
            application.revocations.republish_all()
        resync.start()

    def on_stop() -> None:
        stop.set()
        application.close()

    return GrpcService(
        name="auth",
        register=register,
        service_names=[SERVICE_NAME],
        is_ready=application.database.ping,
        on_stop=on_stop,
    )


def cleanup_expired_from(database: Database, settings: AuthSettings) -> dict[str, int]:
    """The `cleanup-expired` job on `database`: how many of each kind went."""
    store = SqlRetentionStore(
        database,
        RetentionBound(settings.retention_batch_size, settings.retention_max_rows_per_run),
    )
    policy = RetentionPolicy(
        ended_session_days=settings.ended_session_retention_days,
        audit_event_days=settings.audit_event_retention_days,
    )
    return cleanup_expired(store, policy)
