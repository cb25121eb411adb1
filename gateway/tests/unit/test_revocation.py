"""Revoked sessions: the polled list (no Redis), Redis per request with its
fallback, the followed revocation stream, and the verifier refusing a revoked
session's access token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis
from gateway.problems import ApiError
from gateway.revocation import (
    REVOKED_SESSION_PREFIX,
    PolledRevocations,
    RedisRevocations,
    StreamedRevocations,
)
from gateway.tokens import JwksCache, TokenVerifier
from switchyard_dev.ports import free_port as _closed_port

ISSUER = "switchyard-auth"
AUDIENCE = "switchyard-api"


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


class FakeAuth:
    """Stands in for AuthService.ListRevokedSessions."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.revoked: dict[str, float] = {}
        self.sinces: list[float | None] = []
        self.down = False

    def __call__(self, since: float | None) -> tuple[Sequence[tuple[str, float]], float]:
        self.sinces.append(since)
        if self.down:
            raise ConnectionError("auth is down")
        floor = since if since is not None else self.clock.now - 990
        return [(s, at) for s, at in self.revoked.items() if at >= floor], self.clock.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> FakeAuth:
    return FakeAuth(clock)


@pytest.fixture
def polled(auth: FakeAuth, clock: Clock) -> PolledRevocations:
    return PolledRevocations(auth, poll_interval=2, lookback=1200, clock=clock, monotonic=clock)


def test_a_revocation_is_seen_within_the_poll_interval(polled, auth, clock) -> None:
    assert not polled.is_revoked("s1")
    auth.revoked["s1"] = clock.now
    assert not polled.is_revoked("s1")  # the last answer is fresh for 2 s
    clock.now += 2
    assert polled.is_revoked("s1")
    assert polled.fetch_count == 2


def test_polls_are_incremental_with_an_overlap(polled, auth, clock) -> None:
    polled.is_revoked("x")
    clock.now += 2
    polled.is_revoked("x")
    assert auth.sinces == [None, 10_000.0 - 30]


def test_auth_down_keeps_known_revocations_and_fails_open_for_the_rest(polled, auth, clock) -> None:
    auth.revoked["s1"] = clock.now
    assert polled.is_revoked("s1")
    auth.down = True
    auth.revoked["s2"] = clock.now
    clock.now += 2
    assert polled.is_revoked("s1")
    assert not polled.is_revoked("s2")
    calls = len(auth.sinces)
    polled.is_revoked("s2")
    assert len(auth.sinces) == calls  # no hammering: still one poll per interval


def test_old_revocations_are_forgotten(polled, auth, clock) -> None:
    auth.revoked["s1"] = clock.now
    assert polled.is_revoked("s1")
    clock.now += 1201
    assert not polled.is_revoked("s1")


def test_redis_down_falls_back_to_polling_auth(polled, auth, clock) -> None:
    auth.revoked["s1"] = clock.now
    check = RedisRevocations(f"redis://127.0.0.1:{_closed_port()}/0", fallback=polled)
    assert check.is_revoked("s1")
    assert not check.is_revoked("s2")


@pytest.mark.redis
def test_redis_revoked_session_set(redis_url: str, polled, auth) -> None:
    session_id = str(uuid.uuid4())
    check = RedisRevocations(redis_url, fallback=polled)
    assert not check.is_revoked(session_id)
    client = redis.Redis.from_url(redis_url)
    client.set(f"{REVOKED_SESSION_PREFIX}{session_id}", "1", ex=60)
    client.close()
    assert check.is_revoked(session_id)
    assert auth.sinces == []  # Redis answered: auth was never polled


class SetCheck:
    def __init__(self, revoked: set[str]) -> None:
        self.revoked = revoked

    def is_revoked(self, session_id: str) -> bool:
        return session_id in self.revoked


def test_the_verifier_refuses_a_revoked_session(jwks, make_token) -> None:
    revoked: set[str] = set()
    cache = JwksCache(lambda: jwks, ttl=300, min_interval=30)
    verifier = TokenVerifier(cache, ISSUER, AUDIENCE, revocations=SetCheck(revoked))
    token = make_token(sid="s-1")
    assert verifier.verify(token).session_id == "s-1"
    revoked.add("s-1")
    with pytest.raises(ApiError) as error:
        verifier.verify(token)
    assert error.value.status == 401
    with pytest.raises(ApiError):
        verifier.verify(make_token(sid=None))  # a token without a session is refused


class CountingCheck(SetCheck):
    """A fallback that says which sessions it was asked about."""

    def __init__(self, revoked: set[str]) -> None:
        super().__init__(revoked)
        self.asked: list[str] = []

    def is_revoked(self, session_id: str) -> bool:
        self.asked.append(session_id)
        return super().is_revoked(session_id)


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _revoke(client: redis.Redis, stream: str, session_id: str, entry_id: str = "*") -> None:
    """What auth's publisher appends (auth_service.adapters.revocations)."""
    fields = {"session_id": session_id, "revoked_at": str(int(time.time()))}
    client.xadd(stream, fields, id=entry_id)  # type: ignore[arg-type]


@pytest.fixture
def stream_client(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(redis_url)
    stream = f"test-revocations-{uuid.uuid4().hex[:12]}"
    yield client, stream
    client.delete(stream)
    client.close()


@pytest.mark.redis
def test_the_followed_stream_answers_from_memory(redis_url: str, stream_client) -> None:
    client, stream = stream_client
    before, after = str(uuid.uuid4()), str(uuid.uuid4())
    _revoke(client, stream, before)
    fallback = CountingCheck(set())
    check = StreamedRevocations(redis_url, fallback, lookback=1200, stream=stream)
    try:
        check.is_revoked("warm-up")  # starts the reader; the fallback answers meanwhile
        _eventually(lambda: check.live)
        asked = len(fallback.asked)
        assert check.is_revoked(before)  # loaded at start
        assert not check.is_revoked(str(uuid.uuid4()))
        _revoke(client, stream, after)
        _eventually(lambda: check.is_revoked(after), timeout=2.0)
        assert len(fallback.asked) == asked  # answered locally, no lookup per request
    finally:
        check.close()


@pytest.mark.redis
def test_revocations_older_than_the_lookback_are_not_loaded(redis_url: str, stream_client) -> None:
    client, stream = stream_client
    old = str(uuid.uuid4())
    an_hour_ago_ms = int((time.time() - 3600) * 1000)
    _revoke(client, stream, old, entry_id=f"{an_hour_ago_ms}-0")
    check = StreamedRevocations(redis_url, CountingCheck(set()), lookback=1200, stream=stream)
    try:
        check.is_revoked("warm-up")
        _eventually(lambda: check.live)
        assert not check.is_revoked(old)
    finally:
        check.close()


def test_without_a_live_stream_the_fallback_answers() -> None:
    fallback = CountingCheck({"s1"})
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    check = StreamedRevocations(url, fallback, lookback=1200, stream="unreachable")
    try:
        assert check.is_revoked("s1")
        assert not check.is_revoked("s2")
        assert fallback.asked == ["s1", "s2"]
        assert not check.live
    finally:
        check.close()
