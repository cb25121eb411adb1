"""Abuse resistance through a real gRPC server on SQLite and PostgreSQL:
throttling that punishes only the attacker (counters in-process and in the
real Redis), and password hashing shed under a burst while cheap RPCs answer.

Counters in Redis outlive a test run, so every run uses fresh e-mails and
fresh client addresses."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from switchyard.auth.v1 import auth_pb2
from switchyard_kit import CLIENT_ADDRESS_KEY, status_details

from .test_auth_grpc import PASSWORD, details
from .test_sessions_grpc import as_caller, new_email, sign_up


def new_address() -> str:
    """A documentation-range address unique to this run (RFC 5737 / RFC 3849)."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def login(server, email: str, password: str, address: str) -> grpc.StatusCode:
    """The status of one login; a refusal for throttling must carry its reason and wait."""
    error: grpc.RpcError | None = None
    try:
        server.stub.Login(
            auth_pb2.LoginRequest(email=email, password=password),
            metadata=((CLIENT_ADDRESS_KEY, address),),
            timeout=5,
        )
    except grpc.RpcError as exc:
        error = exc
    if error is None:
        return grpc.StatusCode.OK
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert details(error)[0].reason == "TOO_MANY_FAILED_LOGINS"
        assert retry_after(error) >= 1
    return error.code()


def retry_after(error: grpc.RpcError) -> int:
    status = status_details(error)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    return retry.retry_delay.seconds


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def throttled_auth(request: pytest.FixtureRequest, start_auth):
    """An auth server with the default throttling thresholds, its counters in
    this process or in the real Redis. The first backoff is a minute instead of
    1 s: on a loaded machine two logins can be a second apart, and the wait
    would end before the attempt it must refuse (seen under CI load)."""
    backoff = {"login_backoff_base_seconds": 60.0}
    if request.param == "redis":
        return start_auth(redis_url=request.getfixturevalue("redis_url"), **backoff)
    return start_auth(**backoff)


def test_stuffing_from_an_address_blocks_it_only_for_accounts_it_does_not_know(
    throttled_auth,
) -> None:
    server = throttled_auth
    office = new_address()
    owner, stranger = new_email(), new_email()
    sign_up(server, owner)
    sign_up(server, stranger)
    assert login(server, owner, PASSWORD, office) == grpc.StatusCode.OK
    # Credential stuffing from the owner's address: random e-mails, until refused.
    failures = 0
    while login(server, new_email(), "a guessed password", office) != (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    ):
        failures += 1
        assert failures <= 25
    assert failures == 20  # AUTH_LOGIN_ADDRESS_FREE_FAILURES
    # The address is blocked for accounts it never signed in to ...
    assert login(server, stranger, PASSWORD, office) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # ... and not for the owner, who signed in from it (before: 429 for everyone).
    assert login(server, owner, PASSWORD, office) == grpc.StatusCode.OK
    assert login(server, stranger, PASSWORD, new_address()) == grpc.StatusCode.OK


def test_an_attacker_does_not_lock_the_owner_out_and_is_still_refused(throttled_auth) -> None:
    server = throttled_auth
    owner, attacker = new_email(), new_address()
    sign_up(server, owner)
    codes = [login(server, owner, "a guessed password", attacker) for _ in range(7)]
    assert codes[:5] == [grpc.StatusCode.UNAUTHENTICATED] * 5
    assert codes[5:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    # Brute force on one account from one address is still refused, with a wait ...
    assert login(server, owner, PASSWORD, attacker) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # ... while the owner signs in from an address never seen before (before: 429).
    assert login(server, owner, PASSWORD, new_address()) == grpc.StatusCode.OK


def test_a_signup_burst_is_shed_while_cheap_rpcs_keep_answering(start_auth) -> None:
    # One hash at a time and one waiting, with a cost that makes hashes
    # overlap: 24 parallel signups (bounded) against 8 server threads.
    server = start_auth(
        hashing_workers=1,
        hashing_queue=1,
        hashing_queue_timeout_seconds=0.5,
        argon2_time_cost=4,
        argon2_memory_cost_kib=19_456,
        max_workers=8,
    )
    signed_in = sign_up(server)
    caller = as_caller(server, signed_in)
    stop = threading.Event()
    cheap: list[grpc.StatusCode] = []

    def list_sessions() -> None:
        while not stop.is_set():
            try:
                server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=caller, timeout=5)
                cheap.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                cheap.append(exc.code())

    def attempt(_: int) -> tuple[grpc.StatusCode, str, int]:
        """Status, reason and Retry-After of one signup."""
        try:
            sign_up(server)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                return exc.code(), "", 0
            return exc.code(), details(exc)[0].reason, retry_after(exc)
        return grpc.StatusCode.OK, "", 0

    watcher = threading.Thread(target=list_sessions)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            outcomes = list(pool.map(attempt, range(24)))
    finally:
        stop.set()
        watcher.join(10)
    codes = [code for code, _, _ in outcomes]
    shed = [(reason, wait) for code, reason, wait in outcomes if code != grpc.StatusCode.OK]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, outcomes
    assert shed, "no signup was shed"
    assert {reason for reason, _ in shed} == {"PASSWORD_HASHING_BUSY"}
    assert min(wait for _, wait in shed) >= 1
    assert codes.count(grpc.StatusCode.OK) >= 2
    assert cheap, "ListSessions never answered"
    assert set(cheap) == {grpc.StatusCode.OK}, cheap
