"""The profile service's settings, read once from `PROFILE_*` variables (and REDIS_URL)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ServiceSettings, load_settings


class ProfileSettings(ServiceSettings):
    """Settings of the profile service.

    Besides the shared service settings (PROFILE_HOST, PROFILE_PORT,
    PROFILE_DATABASE_URL, PROFILE_DATABASE_READ_URL, ...) and REDIS_URL:

    - PROFILE_CACHE_TTL_SECONDS: how long a cached profile may be served (default 60).
      It also bounds how long a stale entry can live when an invalidation is lost.

    Example::

        settings = load_profile_settings()   # PROFILE_PORT=50052 by default
    """

    service_name: ClassVar[str] = "profile"
    default_port: ClassVar[int] = 50052

    model_config = SettingsConfigDict(env_prefix="PROFILE_", extra="ignore", frozen=True)

    cache_ttl_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # The event stream auth publishes account events on (AUTH_USERS_STREAM).
    users_stream: str = Field(default="users", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    # The trim-dead-letters job: days the worker's dead letters (Redis stream
    # events.<users_stream>.dead-letter.profile) are kept for an operator to look at.
    dead_letter_retention_days: float = Field(default=30.0, gt=0)


def load_profile_settings() -> ProfileSettings:
    """The settings from the environment; ConfigurationError names a bad variable."""
    return load_settings(ProfileSettings)
