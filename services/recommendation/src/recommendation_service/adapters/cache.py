"""Recommendation lists in the kit's cache (Redis, or in-process without REDIS_URL).

A user's list is stored as the serialized GetRecommendationsResponse of its
MAX_LIMIT items: a read parses it in C (protobuf) and builds only the `limit`
items asked for, so a cached answer costs little more than the cache round
trip. The layout is versioned in the key: an entry of another layout is never
read (a miss), and an event drops the user's entry under either key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from switchyard.recommendation.v1 import recommendation_pb2
from switchyard_kit import Cache

from recommendation_service.domain.model import Recommendation

_POPULAR_KEY = "popular"
KEY_VERSION = "v2"


def user_key(user_id: str) -> str:
    return f"{KEY_VERSION}:user:{user_id}"


def _json_user_key(user_id: str) -> str:
    """Where the layout before v2 (a JSON list) kept a user's list: still dropped
    on invalidation, so a process of the older version is never served a stale one."""
    return f"user:{user_id}"


def encode_user(items: Sequence[Recommendation]) -> bytes:
    return recommendation_pb2.GetRecommendationsResponse(
        items=[
            recommendation_pb2.Recommendation(sku=i.sku, score=i.score, source=i.source)
            for i in items
        ]
    ).SerializeToString()


def decode_user(payload: bytes, limit: int) -> list[Recommendation] | None:
    """The first `limit` items of an entry; None when it is not one (no items:
    an empty list is never cached)."""
    answer = recommendation_pb2.GetRecommendationsResponse()
    try:
        answer.ParseFromString(payload)
    except DecodeError:
        return None
    if not answer.items:
        return None
    return [Recommendation(i.sku, i.score, i.source) for i in answer.items[:limit]]


class CachedRecommendations:
    """The RecommendationCache port, with a TTL.

    A user's list lives `user_ttl_seconds` unless an event about that user
    drops it first; the shared popular list (JSON) lives `popular_ttl_seconds`.
    """

    def __init__(self, cache: Cache, user_ttl_seconds: float, popular_ttl_seconds: float) -> None:
        self.cache = cache
        self.user_ttl_seconds = user_ttl_seconds
        self.popular_ttl_seconds = popular_ttl_seconds

    def get_user(self, user_id: str, limit: int) -> list[Recommendation] | None:
        raw = self.cache.get(user_key(user_id))
        if raw is None:
            return None
        return decode_user(raw, limit)

    def set_user(self, user_id: str, items: Sequence[Recommendation]) -> None:
        self.cache.set(user_key(user_id), encode_user(items), self.user_ttl_seconds)

    def invalidate_user(self, user_id: str) -> None:
        self.cache.delete(user_key(user_id), _json_user_key(user_id))

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
