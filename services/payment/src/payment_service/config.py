"""The payment service's settings: PAYMENT_* variables (plus the shared ones)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ServiceSettings

from payment_service.domain.shards import DEFAULT_SLOT_COUNT, SlotMap

SHARD_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


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

    Sharding by the paying user (see domain/shards.py):
    PAYMENT_SHARDS           "s0=postgresql://...,s1=postgresql://..." (name=URL per
                             shard), or bare names "s0,s1,s2,s3" for one SQLite
                             file per shard under the data folder ($SWITCHYARD_DATA_DIR/
                             payment-s0.db...). Empty: one shard, "s0", on
                             PAYMENT_DATABASE_URL (today's single database).
    PAYMENT_SHARD_SLOTS      number of hash slots (1024); fixed for the life of the data
    PAYMENT_SHARD_MAP_FILE   JSON {"slot_count": 1024, "shards": {"s0": "0-511", ...}}:
                             the initial slot ranges (default: equal contiguous ranges
                             in the order PAYMENT_SHARDS names the shards). `migrate`
                             seeds it; after that the live map is the shards'
                             slot_ownership tables (see the README's resharding runbook).
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
    shards: str = ""
    shard_slots: int = Field(default=DEFAULT_SLOT_COUNT, ge=1, le=65536)
    shard_map_file: Path | None = None

    @field_validator("shard_map_file", mode="before")
    @classmethod
    def _no_map_file(cls, value: object) -> object:
        # An empty variable (the base ConfigMap's) means no file.
        return None if value == "" else value

    @field_validator("shards")
    @classmethod
    def _shard_names(cls, value: str) -> str:
        names = [entry.partition("=")[0].strip() for entry in value.split(",") if entry.strip()]
        for name in names:
            if not SHARD_NAME.match(name):
                raise ValueError(f"shard name {name!r}: lower-case letters, digits, '-'")
        if len(set(names)) != len(names):
            raise ValueError("a shard is named twice")
        return value

    @model_validator(mode="after")
    def _shard_map_names_known_shards(self) -> PaymentSettings:
        if set(self.slot_map.shards) - set(self.shard_urls):
            raise ValueError(
                "PAYMENT_SHARD_MAP_FILE names shards PAYMENT_SHARDS does not: "
                f"{sorted(set(self.slot_map.shards) - set(self.shard_urls))}"
            )
        return self

    @property
    def shard_urls(self) -> dict[str, str]:
        """{shard name: database URL}, in the order PAYMENT_SHARDS names them."""
        entries = [entry.strip() for entry in self.shards.split(",") if entry.strip()]
        if not entries:
            return {"s0": self.database_url}
        urls: dict[str, str] = {}
        for entry in entries:
            name, _, url = entry.partition("=")
            name = name.strip()
            default = f"sqlite:///{(self.data_dir / f'payment-{name}.db').resolve()}"
            urls[name] = url.strip() or default
        return urls

    @property
    def slot_map(self) -> SlotMap:
        """The initial slot map: the map file's ranges, or equal ranges."""
        if self.shard_map_file is None:
            return SlotMap.even(list(self.shard_urls), self.shard_slots)
        data = json.loads(self.shard_map_file.read_text())
        return SlotMap.from_ranges(data["shards"], int(data.get("slot_count", self.shard_slots)))

    @property
    def event_sink_targets(self) -> list[str]:
        return [target.strip() for target in self.event_sinks.split(",") if target.strip()]
