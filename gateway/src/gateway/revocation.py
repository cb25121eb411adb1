"""Revoked sessions: an access token whose session was revoked is refused
before it expires.

Auth is the source of truth (its sessions table). Three ways to learn about
revocations, chosen by REDIS_URL and GATEWAY_REVOCATION_STREAM:

- `StreamedRevocations` (Redis, the default): each worker follows auth's
  revocation stream `switchyard:auth:revocations` with one blocking XREAD in
  a background thread and keeps the revoked sessions in memory, so a request
  checks a local set. Bound: the time Redis takes to wake the blocked reader
  (milliseconds). While the reader is not live (starting, Redis failing), the
  per-request check below answers instead.
- `RedisRevocations`: one EXISTS of `switchyard:auth:revoked-session:<sid>`
  per authenticated request; auth SETs that key (with a TTL as long as an
  access token can live) when it commits a revocation. Bound: immediate, for
  a Redis round trip on every request (measured: a quarter of the gateway's
  CPU per cached read, bench/CAPACITY.md).
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
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis

logger = logging.getLogger("switchyard.gateway.revocation")

REVOKED_SESSION_PREFIX = "switchyard:auth:revoked-session:"
REVOCATION_STREAM = "switchyard:auth:revocations"
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


class StreamedRevocations:
    """The revoked sessions of the last `lookback` seconds, in memory, kept
    current by following auth's revocation stream in a background thread
    (started on first use, so after gunicorn forks).

    The local set answers only while the reader is live: it has read the
    stream to its end within the last `max_lag` seconds (a blocking read
    returns at least every `block_seconds`). Otherwise `fallback` answers.

    Example::

        check = StreamedRevocations(redis_url, RedisRevocations(redis_url, polled), lookback=1200)
        check.is_revoked(session_id)
    """

    _PAGE = 1000
    _PRUNE_EVERY_SECONDS = 60.0

    def __init__(
        self,
        url: str,
        fallback: RevocationCheck,
        *,
        lookback: float,
        stream: str = REVOCATION_STREAM,
        block_seconds: float = 1.0,
        max_lag: float = 3.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._fallback = fallback
        self._lookback = lookback
        self._stream = stream
        self._block_seconds = block_seconds
        self._max_lag = max_lag
        self._clock = clock
        self._monotonic = monotonic
        # Written by the reader thread only; requests read it (GIL-atomic).
        self._revoked: dict[str, float] = {}
        self._last_id: str | None = None
        self._live_until = 0.0
        self._next_prune = 0.0
        self._reader: threading.Thread | None = None
        self._reader_pid = 0
        self._start_lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def live(self) -> bool:
        """True while the local set is known to be current."""
        return self._monotonic() < self._live_until

    def is_revoked(self, session_id: str) -> bool:
        self._start_reader()
        if self.live:
            return session_id in self._revoked
        return self._fallback.is_revoked(session_id)

    def close(self) -> None:
        self._stop.set()

    def _start_reader(self) -> None:
        if self._reader is not None and self._reader_pid == os.getpid():
            return
        with self._start_lock:
            if self._reader is not None and self._reader_pid == os.getpid():
                return
            self._reader_pid = os.getpid()
            self._reader = threading.Thread(
                target=self._follow, name="revocation-stream", daemon=True
            )
            self._reader.start()

    def _follow(self) -> None:
        client = redis.Redis.from_url(
            self._url,
            # A blocking read answers within block_seconds; more means Redis hangs.
            socket_timeout=self._block_seconds + 2.0,
            socket_connect_timeout=1.0,
        )
        failing = False
        while not self._stop.is_set():
            try:
                if self._last_id is None:
                    self._load(client)
                else:
                    self._read(client)
            except Exception as exc:  # a dead reader would silently stop revocations
                self._live_until = 0.0
                if not failing:
                    logger.warning(
                        "revocation stream unavailable; checking revocations per request",
                        extra={"error": type(exc).__name__},
                    )
                    failing = True
                self._stop.wait(1.0)
                continue
            if failing:
                logger.info("revocation stream followed again")
                failing = False
            self._prune_if_due()
        client.close()

    def _load(self, client: redis.Redis) -> None:
        """Every revocation within the lookback, page by page."""
        start = f"{int((self._clock() - self._lookback) * 1000)}-0"
        last_id = start
        while True:
            # redis-py types entries loosely: (id, fields) pairs of bytes here.
            entries: Any = client.xrange(self._stream, min=start, max="+", count=self._PAGE)
            if entries:
                last_id = self._apply(entries)
                start = f"({last_id}"
            if len(entries) < self._PAGE:
                break
        # Whatever is added from here on has a larger id than `last_id`.
        self._last_id = last_id
        self._live_until = self._monotonic() + self._max_lag

    def _read(self, client: redis.Redis) -> None:
        assert self._last_id is not None
        response: Any = client.xread(
            {self._stream: self._last_id},
            count=self._PAGE,
            block=int(self._block_seconds * 1000),
        )
        # RESP2 answers [[stream, entries]], RESP3 {stream: entries}.
        streams = response.items() if isinstance(response, dict) else response or ()
        for _stream, entries in streams:
            if entries:
                self._last_id = self._apply(entries)
        self._live_until = self._monotonic() + self._max_lag

    def _apply(self, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> str:
        for _entry_id, fields in entries:
            session_id = fields.get(b"session_id")
            if session_id:
                self._revoked[session_id.decode()] = float(
                    fields.get(b"revoked_at") or self._clock()
                )
        return entries[-1][0].decode()

    def _prune_if_due(self) -> None:
        if self._monotonic() < self._next_prune:
            return
        self._next_prune = self._monotonic() + self._PRUNE_EVERY_SECONDS
        floor = self._clock() - self._lookback
        self._revoked = {sid: at for sid, at in self._revoked.items() if at >= floor}
