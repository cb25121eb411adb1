"""The recommendation service's settings: RECOMMENDATION_* variables (plus the shared ones)."""

from __future__ import annotations

import os
import socket
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ServiceSettings

from recommendation_service.domain.model import ModelParameters


class RecommendationSettings(ServiceSettings):
    """RECOMMENDATION_HOST, RECOMMENDATION_PORT (50054), RECOMMENDATION_DATABASE_URL, ... and:

    RECOMMENDATION_CACHE_TTL_SECONDS          a user's top-N lives this long (an event
                                              about the user drops it earlier)
    RECOMMENDATION_POPULAR_CACHE_TTL_SECONDS  the shared popular list lives this long
    RECOMMENDATION_EXCLUDE_PURCHASED          leave out items the user bought (true)
    RECOMMENDATION_POPULARITY_HALF_LIFE_DAYS  time decay of popularity (14)
    RECOMMENDATION_POPULAR_MIN_BUYERS         distinct buyers an item needs before it
                                              is in the popular list (3)
    RECOMMENDATION_PERSONAL_MIN_BUYERS        distinct buyers an item needs before it
                                              is recommended from co-purchases (3)
    RECOMMENDATION_HISTORY_LIMIT              most recent items used to score (200)
    RECOMMENDATION_USER_WEIGHT_EXPONENT, _SOURCE_EXPONENT, _TARGET_EXPONENT
                                              the similarity (see domain/model.py)
    RECOMMENDATION_SINK_MAX_DELIVERIES        broker-less path: tries before dead-letter
    The worker (Redis Streams, needs REDIS_URL):
    RECOMMENDATION_PAYMENTS_STREAM (payments: payment's PAYMENT_EVENTS_STREAM),
    RECOMMENDATION_WORKER_GROUP (recommendation), RECOMMENDATION_WORKER_CONSUMER
    (default host-pid), RECOMMENDATION_WORKER_MAX_DELIVERIES (5),
    RECOMMENDATION_WORKER_CLAIM_IDLE_SECONDS (30), RECOMMENDATION_WORKER_BLOCK_SECONDS (1),
    RECOMMENDATION_WORKER_BATCH_SIZE (50), RECOMMENDATION_WORKER_START_ID (0: a new
    group reads the retained stream from its start; $: new events only)
    """

    service_name: ClassVar[str] = "recommendation"
    default_port: ClassVar[int] = 50054
    model_config = SettingsConfigDict(env_prefix="RECOMMENDATION_", extra="ignore", frozen=True)

    cache_ttl_seconds: float = Field(default=120.0, gt=0, le=86_400)
    popular_cache_ttl_seconds: float = Field(default=30.0, gt=0, le=3_600)
    exclude_purchased: bool = True
    popularity_half_life_days: float = Field(default=14.0, gt=0, le=3_650)
    popular_min_buyers: int = Field(default=ModelParameters.popular_min_buyers, ge=1, le=1_000)
    personal_min_buyers: int = Field(default=ModelParameters.personal_min_buyers, ge=1, le=1_000)
    history_limit: int = Field(default=200, ge=1, le=10_000)
    user_weight_exponent: float = Field(default=0.75, ge=0, le=2)
    source_exponent: float = Field(default=1.0, ge=0, le=2)
    target_exponent: float = Field(default=0.6, ge=0, le=2)
    sink_max_deliveries: int = Field(default=5, ge=1, le=100)
    payments_stream: str = Field(default="payments", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    worker_group: str = Field(default="recommendation", min_length=1, max_length=64)
    worker_consumer: str = ""
    worker_max_deliveries: int = Field(default=5, ge=1, le=100)
    worker_claim_idle_seconds: float = Field(default=30.0, gt=0)
    worker_block_seconds: float = Field(default=1.0, gt=0, le=30)
    worker_batch_size: int = Field(default=50, ge=1, le=1_000)
    # Where a NEW consumer group starts: "0" = everything the stream still holds
    # (a fresh deployment learns from the retained history), "$" = new events only.
    worker_start_id: str = Field(default="0", pattern=r"^(0|\$|[0-9]+-[0-9]+)$")
    # The scheduled jobs: days a processed event id is kept for deduplication
    # (cleanup-processed-events; safe to forget: the model also counts each
    # payment once by its id and refunds by their cumulative fraction), and days
    # a dead letter is kept for an operator (the broker-less path's rows go with
    # cleanup-processed-events, the worker's Redis stream with trim-dead-letters).
    processed_event_retention_days: float = Field(default=30.0, ge=1)
    dead_letter_retention_days: float = Field(default=30.0, gt=0)

    @property
    def model_parameters(self) -> ModelParameters:
        return ModelParameters(
            user_weight_exponent=self.user_weight_exponent,
            source_exponent=self.source_exponent,
            target_exponent=self.target_exponent,
            popularity_half_life_days=self.popularity_half_life_days,
            popular_min_buyers=self.popular_min_buyers,
            personal_min_buyers=self.personal_min_buyers,
            history_limit=self.history_limit,
            exclude_purchased=self.exclude_purchased,
        )

    @property
    def consumer_name(self) -> str:
        """This worker's name in the consumer group: unique per process."""
        return self.worker_consumer or f"{socket.gethostname()}-{os.getpid()}"
