"""The payment service's settings: PAYMENT_* variables (plus the shared ones)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ServiceSettings


class PaymentSettings(ServiceSettings):
    """PAYMENT_HOST, PAYMENT_PORT (50053), PAYMENT_DATABASE_URL, ... and:

    PAYMENT_IDEMPOTENCY_TTL_HOURS     keys are kept at least this long (>= 24)
    PAYMENT_IDEMPOTENCY_WAIT_SECONDS  a request waits this long for another one
                                      holding the same key, then gets 409
    PAYMENT_LOCK_TIMEOUT_SECONDS      longest wait for a wallet/payment row lock
    PAYMENT_EVENT_SINKS               comma-separated EventSinkService targets
                                      (the broker-less path, used without REDIS_URL)
    PAYMENT_EVENTS_STREAM             the stream payment events go on ("payments";
                                      the recommendation worker's
                                      RECOMMENDATION_PAYMENTS_STREAM)
    PAYMENT_RELAY_BATCH_SIZE, PAYMENT_RELAY_POLL_INTERVAL_SECONDS,
    PAYMENT_RELAY_MAX_BACKOFF_SECONDS, PAYMENT_RELAY_PUBLISH_TIMEOUT_SECONDS,
    PAYMENT_RELAY_STREAM_MAX_LENGTH, PAYMENT_RELAY_RETENTION_HOURS
    """

    service_name: ClassVar[str] = "payment"
    default_port: ClassVar[int] = 50053
    model_config = SettingsConfigDict(env_prefix="PAYMENT_", extra="ignore", frozen=True)

    idempotency_ttl_hours: float = Field(default=24.0, ge=24.0)
    idempotency_wait_seconds: float = Field(default=2.0, gt=0, le=30)
    lock_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    event_sinks: str = ""
    events_stream: str = Field(default="payments", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    relay_batch_size: int = Field(default=100, ge=1, le=10_000)
    relay_poll_interval_seconds: float = Field(default=0.5, gt=0)
    relay_max_backoff_seconds: float = Field(default=30.0, gt=0)
    relay_publish_timeout_seconds: float = Field(default=5.0, gt=0)
    relay_stream_max_length: int = Field(default=1_000_000, ge=1000)
    relay_retention_hours: float = Field(default=168.0, gt=0)

    @property
    def event_sink_targets(self) -> list[str]:
        return [target.strip() for target in self.event_sinks.split(",") if target.strip()]
