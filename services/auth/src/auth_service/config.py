"""The auth service's settings, read once from `AUTH_*` variables (and `PROFILE_TARGET`)."""

from __future__ import annotations

import logging
from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ConfigurationError, ServiceSettings, require_real_secret

logger = logging.getLogger(__name__)

# A Fernet key is 32 random bytes; a secret shorter than this many characters
# cannot carry that much entropy, so it is refused outside development.
MIN_SECRET_LENGTH = 32
# Server threads that password hashing may never take (see _check_hashing_room).
MIN_CHEAP_RPC_THREADS = 2
SECRET_VARIABLE = "AUTH_SIGNING_KEY_SECRET"  # noqa: S105 - a variable name, not a secret


class AuthSettings(ServiceSettings):
    """Settings of the auth service.

    Example::

        settings = load_settings(AuthSettings)   # AUTH_PORT, AUTH_DATABASE_URL, ...
    """

    service_name: ClassVar[str] = "auth"
    default_port: ClassVar[int] = 50051
    model_config = SettingsConfigDict(
        env_prefix="AUTH_", extra="ignore", frozen=True, populate_by_name=True
    )

    token_issuer: str = Field(default="switchyard-auth", min_length=1)
    token_audience: str = Field(default="switchyard-api", min_length=1)
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    # A session's absolute lifetime: no refresh extends it.
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    # Idle timeout: a refresh token not used for this long stops working.
    refresh_token_idle_timeout_seconds: int = Field(default=7 * 86_400, ge=60)
    # A spent refresh token presented again within this many seconds is a
    # concurrent refresh of the same client (answered), not reuse (revoked).
    refresh_reuse_overlap_seconds: float = Field(default=5.0, ge=0, le=60)
    # Clock skew the gateway tolerates (GATEWAY_TOKEN_LEEWAY_SECONDS): added
    # to how long revocations and retired keys are kept.
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)

    # Brute-force protection (failed logins, in Redis or in-process; the
    # policy is service_layer.throttle and the README's table).
    # One address guessing one account:
    login_account_address_free_failures: int = Field(default=5, ge=1)
    # One address failing across accounts it never signed in to (NATs share addresses):
    login_address_free_failures: int = Field(default=20, ge=1)
    # Every address together failing one account, at addresses it never signed
    # in from; above what one address's backoff allows in a window (~110 a day).
    login_account_free_failures: int = Field(default=200, ge=1)
    login_backoff_base_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0)
    login_failure_window_seconds: float = Field(default=86_400.0, gt=0)
    login_known_address_seconds: float = Field(default=30 * 86_400.0, ge=0)

    # argon2id cost, OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_cost_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)

    # Password hashing (signup, login, password change) is the one expensive
    # thing anonymous callers can ask for: at most `hashing_workers` hashes run
    # at once, `hashing_queue` more wait up to `hashing_queue_timeout_seconds`,
    # and the rest are refused at once (RESOURCE_EXHAUSTED, HTTP 429), so a
    # burst never takes every server thread from the cheap RPCs.
    hashing_workers: int = Field(default=2, ge=1)
    hashing_queue: int = Field(default=4, ge=0)
    # At most 4 s: a wait plus the hash must end inside the gateway's 5 s
    # budget for signup and login, so a caller gets 429, never a timeout.
    hashing_queue_timeout_seconds: float = Field(default=1.0, gt=0, le=4)

    # Encrypts the private signing keys stored in the database (Fernet). One
    # secret, or several separated by commas while rotating it: the first
    # encrypts, every one decrypts.
    signing_key_secret: SecretStr | None = None
    # How long a process keeps the signing keys it loaded before asking the
    # database again (a key rotated by another process is seen after this).
    signing_key_cache_seconds: float = Field(default=300.0, gt=0)

    # The profile service: signup calls its CreateProfile here, and without
    # REDIS_URL the relay delivers account events to its EventSinkService here
    # (and to AUTH_EVENT_SINKS, if set).
    profile_target: str = Field(
        default="127.0.0.1:50052",
        min_length=1,
        validation_alias=AliasChoices("PROFILE_TARGET", "profile_target"),
    )
    # Signup creates the profile through CreateProfile within this bound (and
    # what is left of the signup's deadline); past it, the UserRegistered
    # event creates it a moment later.
    profile_create_timeout_seconds: float = Field(default=1.0, gt=0, le=10)
    # Comma-separated gRPC targets that receive events when there is no Redis;
    # empty means PROFILE_TARGET alone.
    event_sinks: str = ""
    # The logical event stream of account events (Redis stream "events.<name>").
    users_stream: str = Field(default="users", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    relay_batch_size: int = Field(default=100, ge=1, le=10_000)
    relay_poll_interval_seconds: float = Field(default=0.2, gt=0)
    relay_max_backoff_seconds: float = Field(default=30.0, gt=0)
    relay_publish_timeout_seconds: float = Field(default=5.0, gt=0)
    relay_stream_max_length: int = Field(default=1_000_000, ge=1000)
    relay_retention_hours: float = Field(default=168.0, gt=0)
    # The cleanup-expired job (service_layer/retention.py): days an ended
    # session, and an audit event, is kept. A revoked session must outlive the
    # access tokens issued before its revocation (minutes): 1 day at least.
    ended_session_retention_days: float = Field(default=30.0, ge=1)
    audit_event_retention_days: float = Field(default=365.0, ge=1)

    @model_validator(mode="after")
    def _check_hashing_room(self) -> AuthSettings:
        # Threads hashing or waiting to hash must leave some of the server's
        # threads to the cheap RPCs (JWKS, refresh, sessions).
        if self.hashing_workers + self.hashing_queue + MIN_CHEAP_RPC_THREADS > self.max_workers:
            raise ConfigurationError(
                "invalid configuration: AUTH_HASHING_WORKERS + AUTH_HASHING_QUEUE must leave at "
                f"least {MIN_CHEAP_RPC_THREADS} of AUTH_MAX_WORKERS ({self.max_workers}) threads "
                "for other RPCs"
            )
        return self

    @model_validator(mode="after")
    def _check_secret(self) -> AuthSettings:
        raw = self.signing_key_secret.get_secret_value() if self.signing_key_secret else None
        require_real_secret(self, SECRET_VARIABLE, raw)
        if not self.is_development and raw is not None:
            short = [s for s in self.signing_key_secrets if len(s) < MIN_SECRET_LENGTH]
            if short or not self.signing_key_secrets:
                raise ConfigurationError(
                    f"invalid configuration: {SECRET_VARIABLE} must hold secrets of at least "
                    f"{MIN_SECRET_LENGTH} characters"
                )
        return self

    @property
    def signing_key_secrets(self) -> list[str]:
        """The key-encryption secrets, newest first; empty when none is set."""
        if self.signing_key_secret is None:
            return []
        raw = self.signing_key_secret.get_secret_value()
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def event_sink_targets(self) -> list[str]:
        """Where the relay delivers events without Redis."""
        targets = [t.strip() for t in self.event_sinks.split(",") if t.strip()]
        return targets or [self.profile_target]

    @property
    def revocation_lifetime_seconds(self) -> int:
        """How long a revocation must be remembered: as long as an access token
        issued before it can still verify (its TTL plus the verifiers' leeway),
        plus a minute for a refresh that was in flight when it happened."""
        return self.access_token_ttl_seconds + self.token_leeway_seconds + 60
