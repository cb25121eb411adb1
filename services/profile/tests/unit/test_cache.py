"""Cache entries: their encoding and what happens to bad ones."""

from datetime import UTC, datetime

import pytest
from profile_service.adapters.cache import (
    ProfileCache,
    cache_key,
    decode_profile,
    encode_profile,
)
from profile_service.domain.model import Profile
from switchyard_kit import InProcessCache

USER = "3f2a6c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5f"


def make_profile() -> Profile:
    profile = Profile.new(USER, "Zoë 李", datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC))
    profile.preferences = {"theme": "dark", "emoji": "👩‍💻"}
    profile.bio = "line\nbreak"
    return profile


def test_round_trip() -> None:
    profile = make_profile()
    assert decode_profile(encode_profile(profile)) == profile


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"user_id": "x"}', b'{"preferences": 1}', b"\xff\xfe"],
)
def test_garbage_is_a_miss_and_dropped(payload: bytes) -> None:
    backend = InProcessCache("profile-test")
    backend.set(cache_key(USER), payload, 60)
    cache = ProfileCache(backend, ttl_seconds=60)
    assert cache.get(USER) is None
    assert backend.get(cache_key(USER)) is None


def test_entry_of_another_user_is_a_miss() -> None:
    backend = InProcessCache("profile-test")
    other = "00000000-0000-4000-8000-000000000000"
    backend.set(cache_key(other), encode_profile(make_profile()), 60)
    assert ProfileCache(backend, ttl_seconds=60).get(other) is None


def test_put_get_invalidate() -> None:
    cache = ProfileCache(InProcessCache("profile-test"), ttl_seconds=60)
    profile = make_profile()
    cache.put(profile)
    assert cache.get(USER) == profile
    cache.invalidate(USER)
    assert cache.get(USER) is None
