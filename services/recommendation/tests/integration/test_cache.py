"""The recommendation cache on the real Redis: a user's list is stored as the
serialized response and read back cut to the limit; an event drops it (under
the older layout's key too); an entry in another layout reads as a miss."""

from __future__ import annotations

import json
import uuid

import pytest
from recommendation_service.adapters.cache import CachedRecommendations, user_key
from recommendation_service.domain.model import POPULAR, Recommendation
from switchyard_kit import RedisCache

LIST = [Recommendation(f"sku-{n:03d}", 100.0 - n + 1 / 3, POPULAR) for n in range(100)]


@pytest.fixture
def cache(redis_url: str) -> CachedRecommendations:
    # A namespace of its own: tests run in parallel on one Redis.
    return CachedRecommendations(RedisCache(f"rec-{uuid.uuid4().hex[:8]}", redis_url), 60, 30)


@pytest.mark.redis
def test_a_cached_list_reads_back_cut_to_the_limit(cache: CachedRecommendations) -> None:
    cache.set_user("u1", LIST)
    assert cache.get_user("u1", 10) == LIST[:10]
    assert cache.get_user("u1", 100) == LIST  # scores exact: doubles both ways
    assert cache.get_user("u2", 10) is None


@pytest.mark.redis
def test_an_event_drops_the_list_under_either_layouts_key(cache: CachedRecommendations) -> None:
    cache.set_user("u1", LIST)
    cache.cache.set("user:u1", json.dumps([["sku-000", 1.0, POPULAR]]).encode(), 60)
    cache.invalidate_user("u1")
    assert cache.get_user("u1", 10) is None
    assert cache.cache.get("user:u1") is None


@pytest.mark.redis
def test_an_entry_of_the_older_layout_is_not_read(cache: CachedRecommendations) -> None:
    cache.cache.set("user:u1", json.dumps([["sku-000", 1.0, POPULAR]]).encode(), 60)
    assert cache.get_user("u1", 10) is None


@pytest.mark.redis
@pytest.mark.parametrize(
    "payload",
    [json.dumps([["sku-000", 1.0, POPULAR]]).encode(), b"", b"\xff\xff\xff\xff"],
    ids=["json-list", "empty", "garbage"],
)
def test_an_entry_that_is_not_a_list_reads_as_a_miss(
    cache: CachedRecommendations, payload: bytes
) -> None:
    cache.cache.set(user_key("u1"), payload, 60)
    assert cache.get_user("u1", 10) is None
