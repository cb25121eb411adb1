"""Typed settings read from the environment, once, at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT = "development"


class ConfigurationError(RuntimeError):
    """A setting is missing or invalid; the message names the variable."""


class CommonSettings(BaseSettings):
    """Settings every process shares. Variables without a prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: str = Field(default=DEVELOPMENT, validation_alias=AliasChoices("SWITCHYARD_ENV"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    data_dir: Path = Field(
        default=Path("data"), validation_alias=AliasChoices("SWITCHYARD_DATA_DIR")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))

    @property
    def is_development(self) -> bool:
        return self.environment == DEVELOPMENT


class ServiceSettings(CommonSettings):
    """Settings of one gRPC service, read from `<SERVICE>_*` variables.

    Example::

        class ProfileSettings(ServiceSettings):
            service_name: ClassVar[str] = "profile"
            default_port: ClassVar[int] = 50052
            model_config = SettingsConfigDict(env_prefix="PROFILE_", extra="ignore")

        settings = load_settings(ProfileSettings)   # reads PROFILE_PORT, PROFILE_DATABASE_URL...
    """

    service_name: ClassVar[str]
    default_port: ClassVar[int]

    host: str = "127.0.0.1"
    # Unset means the service's default port; 0 asks the OS for a free one (tests).
    port: int = Field(default=0, ge=0, le=65535)
    # 0 turns the Prometheus endpoint off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # A worker's or relay's liveness endpoint (/livez); 0 serves none. It answers
    # 503 once the loop has not turned for liveness_max_age_seconds.
    liveness_port: int = Field(default=0, ge=0, le=65535)
    liveness_max_age_seconds: float = Field(default=30.0, gt=0)
    database_url: str = ""
    database_read_url: str | None = None
    # Reads that tolerate staleness leave a PostgreSQL replica for the primary
    # once it lags more than this (or is down); see switchyard_kit._replica.
    replica_max_lag_seconds: float = Field(default=5.0, gt=0)
    replica_probe_interval_seconds: float = Field(default=0.5, gt=0)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    max_workers: int = Field(default=16, ge=1)
    # Beyond this many RPCs in flight the server sheds with RESOURCE_EXHAUSTED.
    max_concurrent_rpcs: int = Field(default=64, ge=1)
    # SIGTERM: report NOT_SERVING, wait shutdown_delay so load balancers notice,
    # then let in-flight RPCs finish for up to grace seconds.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    grace_seconds: float = Field(default=10.0, ge=0)
    # How often readiness re-checks the database.
    readiness_interval_seconds: float = Field(default=2.0, gt=0)
    # Servers close connections after this age so clients rebalance to new pods.
    max_connection_age_seconds: float = Field(default=300.0, gt=0)
    # The scheduled clean-up jobs (switchyard_kit.retention): rows deleted per
    # transaction, and at most per run and table (the rest goes on the next run).
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000)
    retention_max_rows_per_run: int = Field(default=100_000, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("port") in (None, ""):
            return {**data, "port": cls.default_port}
        return data

    @model_validator(mode="after")
    def _fill_defaults(self) -> ServiceSettings:
        # Frozen models are filled through object.__setattr__ during validation.
        if not self.database_url:
            url = f"sqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"
            object.__setattr__(self, "database_url", url)
        return self

    @property
    def bind_address(self) -> str:
        return f"{self.host}:{self.port}"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def _variable_name(settings_class: type[BaseSettings], location: tuple[Any, ...]) -> str:
    if not location:
        return settings_class.__name__
    field_name = str(location[0])
    field = settings_class.model_fields.get(field_name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    return f"{prefix}{field_name}".upper()


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Build `settings_class` from the environment or fail naming the variables.

    Example::

        settings = load_settings(GatewaySettings)
        # ConfigurationError: invalid configuration: GATEWAY_PORT: Input should be ...
    """
    try:
        return settings_class()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable_name(settings_class, tuple(error['loc']))}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def require_real_secret(settings: CommonSettings, variable: str, value: str | None) -> None:
    """Refuse an empty or placeholder secret outside development."""
    placeholders = {"", "changeme", "change-me", "secret", "dev", "development"}
    if not settings.is_development and (value is None or value.strip().lower() in placeholders):
        raise ConfigurationError(f"invalid configuration: {variable} must be set to a real secret")
