"""Where failed-login counters, blocks and known (account, address) pairs
live: Redis (shared by every replica) or, with no REDIS_URL or while Redis is
down, this process's memory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis
from cachetools import LRUCache

logger = logging.getLogger(__name__)

PREFIX = "switchyard:auth:login:"


class InProcessAttemptStore:
    """Counters and blocks in a bounded in-memory map with expiry.

    Bounded (`max_keys`), so a flood of distinct addresses cannot exhaust
    memory; the oldest entries go first, which only makes an attacker's own
    counters forget sooner.
    """

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        # key -> (count, expires_at) and key -> blocked_until, expiry checked on read.
        self._failures: LRUCache[str, tuple[int, float]] = LRUCache(maxsize=max_keys)
        self._blocks: LRUCache[str, float] = LRUCache(maxsize=max_keys)
        # Known (account, address) pairs -> until when. Their own map, so a
        # flood of an attacker's counters cannot push an owner's pair out.
        self._known: LRUCache[str, float] = LRUCache(maxsize=max_keys)
        self._lock = threading.Lock()

    def blocked_for(self, keys: Sequence[str]) -> float:
        now = self._clock()
        with self._lock:
            waits = [self._blocks.get(key, 0.0) - now for key in keys]
        return max([0.0, *waits])

    def add_failure(self, key: str, window_seconds: float, *, sliding: bool = True) -> int:
        now = self._clock()
        with self._lock:
            count, expires_at = self._failures.get(key, (0, 0.0))
            if expires_at <= now:
                count, expires_at = 0, now + window_seconds
            count += 1
            self._failures[key] = (count, now + window_seconds if sliding else expires_at)
            return count

    def block(self, key: str, seconds: float) -> None:
        with self._lock:
            self._blocks[key] = self._clock() + seconds

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._blocks.pop(key, None)

    def remember(self, key: str, seconds: float) -> None:
        with self._lock:
            self._known[key] = self._clock() + seconds

    def is_remembered(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            return self._known.get(key, 0.0) > now


class RedisAttemptStore:
    """Counters (INCR + EXPIRE) and blocks (a key whose TTL is the wait) in
    Redis, shared by every auth replica. Redis errors propagate; wrap it in
    `FallbackAttemptStore` to degrade to per-process counting instead."""

    def __init__(self, url: str, socket_timeout: float = 0.25) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )

    def blocked_for(self, keys: Sequence[str]) -> float:
        pipeline = self._client.pipeline(transaction=False)
        for key in keys:
            pipeline.pttl(f"{PREFIX}block:{key}")
        remaining = [int(ms) for ms in pipeline.execute()]
        return max([0.0, *(ms / 1000 for ms in remaining if ms > 0)])

    def add_failure(self, key: str, window_seconds: float, *, sliding: bool = True) -> int:
        name = f"{PREFIX}failures:{key}"
        pipeline = self._client.pipeline(transaction=True)
        pipeline.incr(name)
        # A fixed window sets the expiry only on the first failure (NX, Redis 7).
        pipeline.pexpire(name, max(1, int(window_seconds * 1000)), nx=not sliding)
        count, _ = pipeline.execute()
        return int(count)

    def block(self, key: str, seconds: float) -> None:
        self._client.set(f"{PREFIX}block:{key}", b"1", px=max(1, int(seconds * 1000)))

    def reset(self, key: str) -> None:
        self._client.delete(f"{PREFIX}failures:{key}", f"{PREFIX}block:{key}")

    def remember(self, key: str, seconds: float) -> None:
        self._client.set(f"{PREFIX}{key}", b"1", px=max(1, int(seconds * 1000)))

    def is_remembered(self, key: str) -> bool:
        return bool(self._client.exists(f"{PREFIX}{key}"))

    def close(self) -> None:
        self._client.close()


class FallbackAttemptStore:
    """Redis first; while it fails, this process's own counters.

    Throttling degrades (each replica counts on its own) rather than stopping
    logins or stopping to throttle: an attacker gains at most a factor of the
    replica count during a Redis outage.
    """

    def __init__(self, primary: RedisAttemptStore, fallback: InProcessAttemptStore) -> None:
        self._primary = primary
        self._fallback = fallback
        self._failing = False

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            logger.warning(
                "login throttling falls back to this process: redis unavailable",
                extra={"error": type(exc).__name__},
            )
            self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            logger.info("login throttling uses redis again")
            self._failing = False

    def blocked_for(self, keys: Sequence[str]) -> float:
        try:
            wait = self._primary.blocked_for(keys)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._fallback.blocked_for(keys)
        self._recovered()
        return max(wait, self._fallback.blocked_for(keys))

    def add_failure(self, key: str, window_seconds: float, *, sliding: bool = True) -> int:
        try:
            count = self._primary.add_failure(key, window_seconds, sliding=sliding)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._fallback.add_failure(key, window_seconds, sliding=sliding)
        self._recovered()
        return count

    def block(self, key: str, seconds: float) -> None:
        try:
            self._primary.block(key, seconds)
        except redis.RedisError as exc:
            self._failed(exc)
            self._fallback.block(key, seconds)

    def reset(self, key: str) -> None:
        self._fallback.reset(key)
        try:
            self._primary.reset(key)
        except redis.RedisError as exc:
            self._failed(exc)

    def remember(self, key: str, seconds: float) -> None:
        # Kept here too, so the owner stays known through a Redis outage.
        self._fallback.remember(key, seconds)
        try:
            self._primary.remember(key, seconds)
        except redis.RedisError as exc:
            self._failed(exc)

    def is_remembered(self, key: str) -> bool:
        try:
            known = self._primary.is_remembered(key)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._fallback.is_remembered(key)
        self._recovered()
        return known or self._fallback.is_remembered(key)

    def close(self) -> None:
        self._primary.close()
