"""Recommendation lists in the kit's cache (Redis, or in-process without REDIS_URL)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from switchyard_kit import Cache

from recommendation_service.domain.model import Recommendation

_POPULAR_KEY = "popular"


def _user_key(user_id: str) -> str:
    return f"user:{user_id}"


class CachedRecommendations:
    """The RecommendationCache port: JSON lists with a TTL.

    A user's list lives `user_ttl_seconds` unless an event about that user
    drops it first; the shared popular list lives `popular_ttl_seconds`.
    """

    def __init__(self, cache: Cache, user_ttl_seconds: float, popular_ttl_seconds: float) -> None:
        self.cache = cache
        self.user_ttl_seconds = user_ttl_seconds
        self.popular_ttl_seconds = popular_ttl_seconds

    def get_user(self, user_id: str) -> list[Recommendation] | None:
        raw = self.cache.get(_user_key(user_id))
        if raw is None:
            return None
        try:
            return [
                Recommendation(sku, float(score), source) for sku, score, source in json.loads(raw)
            ]
        except (ValueError, TypeError):
            return None  # written by an incompatible version: a miss

    def set_user(self, user_id: str, items: Sequence[Recommendation]) -> None:
        payload = json.dumps([[item.sku, item.score, item.source] for item in items])
        self.cache.set(_user_key(user_id), payload.encode(), self.user_ttl_seconds)

    def invalidate_user(self, user_id: str) -> None:
        self.cache.delete(_user_key(user_id))

    def get_popular(self) -> list[tuple[str, float]] | None:
        raw = self.cache.get(_POPULAR_KEY)
        if raw is None:
            return None
        try:
            return [(sku, float(mass)) for sku, mass in json.loads(raw)]
        except (ValueError, TypeError):
            return None

    def set_popular(self, items: Sequence[tuple[str, float]]) -> None:
        payload = json.dumps([[sku, mass] for sku, mass in items])
        self.cache.set(_POPULAR_KEY, payload.encode(), self.popular_ttl_seconds)
