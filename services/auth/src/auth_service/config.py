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
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60)

    # argon2id cost, OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_cost_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)

    # Encrypts the private signing keys stored in the database (Fernet). One
    # secret, or several separated by commas while rotating it: the first
    # encrypts, every one decrypts.
    signing_key_secret: SecretStr | None = None
    # How long a process keeps the signing keys it loaded before asking the
    # database again (a key rotated by another process is seen after this).
    signing_key_cache_seconds: float = Field(default=300.0, gt=0)

    # The profile service, told about every new account right after signup.
    profile_target: str = Field(
        default="127.0.0.1:50052",
        min_length=1,
        validation_alias=AliasChoices("PROFILE_TARGET", "profile_target"),
    )
    # Upper bound of the CreateProfile call; the caller's deadline may cut it shorter.
    profile_timeout_seconds: float = Field(default=1.0, gt=0, le=5.0)

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
