"""Wiring: builds the auth use cases from settings with the real adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from switchyard_kit import Backend, Database

from auth_service.adapters.hashing import Argon2PasswordHasher
from auth_service.adapters.profiles import GrpcProfileDirectory, profile_backend
from auth_service.adapters.signing import Ed25519JwtSigner, FernetKeyVault, PlaintextKeyVault
from auth_service.adapters.unit_of_work import AuthUnitOfWork
from auth_service.config import SECRET_VARIABLE, AuthSettings
from auth_service.domain.tokens import TokenPolicy
from auth_service.service_layer.handlers import AuthService, utc_now
from auth_service.service_layer.keys import KeyRing
from auth_service.service_layer.ports import KeyVault, ProfileDirectory

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass
class AuthApplication:
    """Everything a running auth process holds."""

    settings: AuthSettings
    database: Database
    auth: AuthService
    keys: KeyRing
    profiles: ProfileDirectory
    backends: list[Backend] = field(default_factory=list)

    def close(self) -> None:
        """Close the client channels and the connection pools (on shutdown)."""
        for backend in self.backends:
            backend.close()
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


def build_application(
    settings: AuthSettings, *, profiles: ProfileDirectory | None = None
) -> AuthApplication:
    """The auth use cases on the configured database; `profiles` replaces the
    gRPC profile client (tests)."""
    database = Database(
        settings.database_url,
        settings.database_read_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )

    def uow_factory() -> AuthUnitOfWork:
        return AuthUnitOfWork(database)

    signer = Ed25519JwtSigner()
    keys = KeyRing(
        uow_factory,
        signer,
        key_vault(settings),
        clock=utc_now,
        cache_seconds=settings.signing_key_cache_seconds,
    )
    backends: list[Backend] = []
    if profiles is None:
        backend = profile_backend(settings.profile_target)
        backends.append(backend)
        profiles = GrpcProfileDirectory(backend)
    auth = AuthService(
        uow_factory,
        hasher=Argon2PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        ),
        signer=signer,
        keys=keys,
        profiles=profiles,
        token_policy=TokenPolicy(
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
        profile_timeout_seconds=settings.profile_timeout_seconds,
    )
    return AuthApplication(settings, database, auth, keys, profiles, backends)
