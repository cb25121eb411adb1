"""Cache-aside with the real Redis, and a Redis that is down."""

from __future__ import annotations

from collections.abc import Callable

import redis
from google.protobuf.field_mask_pb2 import FieldMask
from profile_service.adapters.cache import cache_key
from switchyard.profile.v1 import profile_pb2

from .conftest import Server

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def get_mine(server: Server, user_id: str) -> profile_pb2.Profile:
    return server.stub.GetMyProfile(
        profile_pb2.GetMyProfileRequest(), metadata=server.caller(user_id), timeout=10
    ).profile


def set_bio(server: Server, user_id: str, bio: str) -> profile_pb2.Profile:
    return server.stub.UpdateMyProfile(
        profile_pb2.UpdateMyProfileRequest(
            profile=profile_pb2.Profile(bio=bio), update_mask=FieldMask(paths=["bio"])
        ),
        metadata=server.caller(user_id),
        timeout=10,
    ).profile


def test_reads_fill_redis_and_updates_invalidate_it(
    start_server: Callable[..., Server], database_url: str, redis_url: str, user_id: str
) -> None:
    server = start_server(database_url, redis_url, cache_ttl_seconds=30)
    client = redis.Redis.from_url(redis_url)
    key = f"profile:{cache_key(user_id)}"
    try:
        server.stub.CreateProfile(
            profile_pb2.CreateProfileRequest(user_id=user_id, display_name="Ada"), timeout=10
        )
        assert client.get(key) is None

        first = get_mine(server, user_id)
        assert client.get(key) is not None
        assert 0 < client.pttl(key) <= 30_000

        # Behind the service's back: a cached read does not see it.
        server.sql("UPDATE profiles SET bio = 'changed in SQL' WHERE user_id = :u", u=user_id)
        assert get_mine(server, user_id) == first
        public = server.stub.GetPublicProfile(
            profile_pb2.GetPublicProfileRequest(user_id=user_id), timeout=10
        ).profile
        assert public.bio == ""

        updated = set_bio(server, user_id, "Analyst")
        assert client.get(key) is None
        assert get_mine(server, user_id) == updated
        assert updated.bio == "Analyst"
        assert client.get(key) is not None
    finally:
        client.delete(key)
        client.close()


def test_redis_down_means_cache_misses_only(
    start_server: Callable[..., Server], database_url: str, user_id: str
) -> None:
    server = start_server(database_url, CLOSED_PORT_REDIS)
    server.stub.CreateProfile(
        profile_pb2.CreateProfileRequest(user_id=user_id, display_name="Ada"), timeout=10
    )
    assert get_mine(server, user_id).display_name == "Ada"
    assert set_bio(server, user_id, "still works").bio == "still works"
    assert get_mine(server, user_id).bio == "still works"
    public = server.stub.GetPublicProfile(
        profile_pb2.GetPublicProfileRequest(user_id=user_id), timeout=10
    ).profile
    assert public.bio == "still works"
