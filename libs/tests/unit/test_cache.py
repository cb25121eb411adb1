import time

from switchyard_kit import InProcessCache, RedisCache, build_cache


def test_in_process_cache_returns_what_was_set_until_it_expires() -> None:
    cache = InProcessCache("example")
    cache.set("a", b"1", ttl_seconds=0.2)
    assert cache.get("a") == b"1"
    time.sleep(0.25)
    assert cache.get("a") is None


def test_in_process_cache_deletes() -> None:
    cache = InProcessCache("example")
    cache.set("a", b"1", ttl_seconds=60)
    cache.delete("a", "missing")
    assert cache.get("a") is None


def test_in_process_cache_is_bounded() -> None:
    cache = InProcessCache("example", max_entries=2)
    for key in "abc":
        cache.set(key, key.encode(), ttl_seconds=60)
    assert sum(cache.get(key) is not None for key in "abc") == 2


def test_the_cache_is_redis_only_when_a_url_is_given() -> None:
    assert isinstance(build_cache("example", None), InProcessCache)
    assert isinstance(build_cache("example", "redis://127.0.0.1:6379/15"), RedisCache)


def test_in_process_raise_to_keeps_the_larger_value() -> None:
    cache = InProcessCache("raise")
    cache.raise_to("mark", 300, ttl_seconds=60)
    cache.raise_to("mark", 250, ttl_seconds=60)
    assert cache.get("mark") == b"300"
