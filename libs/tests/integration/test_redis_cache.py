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


def test_raise_to_keeps_the_larger_value_and_renews_the_ttl(redis_url: str) -> None:
    # Write marks of two racing writers: the smaller position, stored last, must not win.
    cache = RedisCache(f"raise-{uuid.uuid4().hex}", redis_url)
    cache.raise_to("mark", 300, ttl_seconds=60)
    cache.raise_to("mark", 250, ttl_seconds=60)
    assert cache.get("mark") == b"300"
    cache.raise_to("mark", 2**40 + 7, ttl_seconds=60)
    assert cache.get("mark") == str(2**40 + 7).encode()
    assert 0 < cache.client.pttl(f"{cache.name}:mark") <= 60_000
