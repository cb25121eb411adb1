"""Revoked sessions: an access token whose session was revoked is refused
before it expires.

Auth is the source of truth (its sessions table). Two ways to learn about
revocations, chosen by REDIS_URL:

- `RedisRevocations`: one EXISTS of `switchyard:auth:revoked-session:<sid>`
  per authenticated request; auth SETs that key (with a TTL as long as an
  access token can live) when it commits a revocation. Bound: immediate.
- `PolledRevocations`: no Redis (embedded mode) - the revoked sessions of the
  last access-token lifetime are fetched from AuthService.ListRevokedSessions
  at most every `poll_interval` seconds, incrementally, and kept in memory.
  Bound: `poll_interval` plus one RPC.

Failure policy: when Redis fails, the check falls back to polling auth; when
that fails too, the last known set keeps applying and tokens not in it are
accepted (fail open). A token's signature, expiry, issuer and audience are
still verified, and it lives at most the access-token TTL (15 min), while
failing closed would turn a Redis or auth outage into an outage of every
authenticated route. Refresh tokens always fail closed: only auth's database
decides them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis

logger = logging.getLogger("switchyard.gateway.revocation")

REVOKED_SESSION_PREFIX = "switchyard:auth:revoked-session:"
# Re-ask for this much before the last answer's time: a revocation stamped
# just before `as_of` may commit just after it.
_POLL_OVERLAP_SECONDS = 30.0

RevokedSince = Callable[[float | None], tuple[Sequence[tuple[str, float]], float]]
"""(since, Unix seconds, or None for "as far back as needed") ->
([(session_id, revoked_at)], as_of): AuthService.ListRevokedSessions."""


class RevocationCheck(Protocol):
    def is_revoked(self, session_id: str) -> bool:
        """True when the session was revoked (as far as can be known now)."""


class PolledRevocations:
    """The revoked sessions of the last `lookback` seconds, refreshed from
    auth at most every `poll_interval` seconds (lazily, on a request)."""

    def __init__(
        self,
        fetch: RevokedSince,
        *,
        poll_interval: float,
        lookback: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._poll_interval = poll_interval
        self._lookback = lookback
        self._clock = clock
        self._monotonic = monotonic
        self._revoked: dict[str, float] = {}
        self._as_of: float | None = None
        self._next_poll = 0.0
        self._failing = False
        self._lock = threading.Lock()
        self.fetch_count = 0

    def is_revoked(self, session_id: str) -> bool:
        self._refresh_if_due()
        return session_id in self._revoked

    def _refresh_if_due(self) -> None:
        if self._monotonic() < self._next_poll:
            return
        with self._lock:
            if self._monotonic() < self._next_poll:
                return  # another thread refreshed while this one waited
            self._next_poll = self._monotonic() + self._poll_interval
            since = None if self._as_of is None else self._as_of - _POLL_OVERLAP_SECONDS
            self.fetch_count += 1
            try:
                sessions, as_of = self._fetch(since)
            except Exception as exc:
                if not self._failing:
                    logger.warning(
                        "revoked sessions cannot be fetched; known revocations still apply, "
                        "others are not seen until auth answers (fail open)",
                        extra={"error": type(exc).__name__},
                    )
                    self._failing = True
                return
            if self._failing:
                logger.info("revoked sessions fetched again")
                self._failing = False
            revoked = dict(self._revoked)
            revoked.update(sessions)
            floor = self._clock() - self._lookback
            self._revoked = {sid: at for sid, at in revoked.items() if at >= floor}
            self._as_of = as_of


class RedisRevocations:
    """The revoked-session set in Redis; `fallback` answers while Redis fails
    (and is otherwise never called, so auth is not polled)."""

    def __init__(
        self,
        url: str,
        fallback: RevocationCheck | None,
        *,
        socket_timeout: float = 0.25,
    ) -> None:
        self._url = url
        self._fallback = fallback
        self._socket_timeout = socket_timeout
        self._client: redis.Redis | None = None
        self._failing = False

    def _redis(self) -> redis.Redis:
        if self._client is None:  # made on first use, after gunicorn forked
            self._client = redis.Redis.from_url(
                self._url,
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._socket_timeout,
            )
        return self._client

    def is_revoked(self, session_id: str) -> bool:
        try:
            found = int(self._redis().exists(f"{REVOKED_SESSION_PREFIX}{session_id}"))
        except redis.RedisError as exc:
            if not self._failing:
                logger.warning(
                    "revocation check falls back to polling auth: redis unavailable",
                    extra={"error": type(exc).__name__},
                )
                self._failing = True
            return self._fallback.is_revoked(session_id) if self._fallback else False
        if self._failing:
            logger.info("revocation check uses redis again")
            self._failing = False
        return found > 0
