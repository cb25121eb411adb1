"""A small byte cache: Redis when REDIS_URL is set, in-process otherwise.

A cache failure is never an error for the caller: a Redis that is down or
slow counts as a miss and the service reads its database instead.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import redis
from cachetools import TLRUCache

from switchyard_kit._metrics import CACHE_REQUESTS

logger = logging.getLogger("switchyard.cache")


class Cache(Protocol):
    """What services need of a cache."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    def delete(self, *keys: str) -> None: ...


class InProcessCache:
    """A bounded LRU with per-entry TTL, for one process (the laptop default)."""

    def __init__(self, name: str, max_entries: int = 10_000) -> None:
        self.name = name
        self._entries: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, value, now: now + value[1]
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
        CACHE_REQUESTS.labels(self.name, "miss" if entry is None else "hit").inc()
        return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (value, ttl_seconds)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def raise_to(self, key: str, value: int, ttl_seconds: float) -> None:
        """Store `value` unless a larger integer is stored; the TTL restarts either way."""
        with self._lock:
            entry = self._entries.get(key)
            kept = max(value, int(entry[0])) if entry is not None else value
            self._entries[key] = (str(kept).encode(), ttl_seconds)


# Keep the larger of the stored and the given integer (decimal text), with a new TTL.
_RAISE_TO = """
local stored = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local given = tonumber(ARGV[1])
if given > stored then stored = given end
redis.call('SET', KEYS[1], string.format('%d', stored), 'PX', ARGV[2])
return stored
"""


class RedisCache:
    """Redis with short timeouts; errors are logged, counted and read as misses."""

    def __init__(self, name: str, url: str, socket_timeout: float = 0.25) -> None:
        self.name = name
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._raise_script = self.client.register_script(_RAISE_TO)

    def get(self, key: str) -> bytes | None:
        try:
            value = self.client.get(f"{self.name}:{key}")
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        CACHE_REQUESTS.labels(self.name, "miss" if value is None else "hit").inc()
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        try:
            self.client.set(f"{self.name}:{key}", value, px=max(1, int(ttl_seconds * 1000)))
        except redis.RedisError as exc:
            self._failed("set", exc)

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            self.client.delete(*(f"{self.name}:{key}" for key in keys))
        except redis.RedisError as exc:
            # A failed invalidation leaves a stale entry until its TTL ends;
            # TTLs are kept short for that reason.
            self._failed("delete", exc)

    def raise_to(self, key: str, value: int, ttl_seconds: float) -> None:
        """Store `value` unless a larger integer is stored (atomically, one
        script); the TTL restarts either way."""
        try:
            self._raise_script(
                keys=[f"{self.name}:{key}"], args=[value, max(1, int(ttl_seconds * 1000))]
            )
        except redis.RedisError as exc:
            self._failed("raise_to", exc)

    def _failed(self, operation: str, exc: Exception) -> None:
        CACHE_REQUESTS.labels(self.name, "error").inc()
        logger.warning(
            "cache unavailable",
            extra={"cache": self.name, "operation": operation, "error": type(exc).__name__},
        )


def build_cache(name: str, redis_url: str | None) -> Cache:
    """Redis when a URL is given, else an in-process cache.

    Example::

        cache = build_cache("profile", settings.redis_url)
        cache.set("user:42", payload, ttl_seconds=60)
    """
    if redis_url:
        return RedisCache(name, redis_url)
    return InProcessCache(name)
