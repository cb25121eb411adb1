import uuid

from switchyard_kit import RedisCache


def test_redis_cache_round_trips_and_expires(redis_url: str) -> None:
    cache = RedisCache(f"test-{uuid.uuid4().hex}", redis_url)
    cache.set("k", b"value", ttl_seconds=30)
    assert cache.get("k") == b"value"
    assert 0 < cache.client.pttl(f"{cache.name}:k") <= 30_000
    cache.delete("k")
    assert cache.get("k") is None


def test_redis_down_reads_as_a_miss_and_writes_are_dropped() -> None:
    cache = RedisCache("test", "redis://127.0.0.1:1/0", socket_timeout=0.2)
    cache.set("k", b"value", ttl_seconds=30)
    cache.delete("k")
    assert cache.get("k") is None
