"""Refresh rotation, revocation, throttling, key rotation, audit and the outbox
relay through a real gRPC server on SQLite and PostgreSQL, with the real Redis."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import jwt
import pytest
import redis
from auth_service.adapters.revocations import REVOCATION_STREAM, revoked_session_key
from auth_service.adapters.tables import audit_events, outbox, users
from auth_service.entrypoints.app import relay_from
from google.rpc import error_details_pb2
from sqlalchemy import select
from switchyard.auth.v1 import auth_pb2
from switchyard.auth.v1 import events_pb2 as auth_events
from switchyard_kit import SESSION_ID_KEY, USER_ID_KEY, status_details
from switchyard_kit.events import stream_name, unpack_payload

from .test_auth_grpc import PASSWORD, count, details, verify


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(server, email: str | None = None, name: str = "Ann"):
    request = auth_pb2.SignUpRequest(
        email=email or new_email(), password=PASSWORD, display_name=name
    )
    return server.stub.SignUp(request, timeout=5).tokens


def as_caller(server, tokens) -> tuple[tuple[str, str], ...]:
    sid = verify(server, tokens.access_token)["sid"]
    return ((USER_ID_KEY, tokens.user_id), (SESSION_ID_KEY, sid))


def refresh(server, token: str):
    return server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token), timeout=5).tokens


def test_rotation_reuse_and_the_overlap_window(start_auth) -> None:
    server = start_auth(refresh_reuse_overlap_seconds=1.0)
    tokens = sign_up(server)
    # Two concurrent refreshes of one token (a client with two tabs) both succeed.
    with ThreadPoolExecutor(2) as pool:
        pairs = list(pool.map(lambda _: refresh(server, tokens.refresh_token), range(2)))
    assert pairs[0].refresh_token != pairs[1].refresh_token
    newest = refresh(server, pairs[0].refresh_token)
    # Past the overlap, the spent token is reuse: the whole family ends.
    time.sleep(1.2)
    with pytest.raises(grpc.RpcError) as caught:
        refresh(server, tokens.refresh_token)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(caught.value)[0].reason == "REFRESH_TOKEN_REUSED"
    for survivor in (newest.refresh_token, pairs[1].refresh_token):
        with pytest.raises(grpc.RpcError) as caught:
            refresh(server, survivor)
        assert details(caught.value)[0].reason == "INVALID_REFRESH_TOKEN"
    with server.application.database.engine.connect() as connection:
        kinds = set(connection.scalars(select(audit_events.c.event_type)))
    assert {"signup", "token_refreshed", "refresh_token_reuse_detected"} <= kinds


@pytest.mark.redis
def test_revocations_reach_redis_and_the_revocation_list(start_auth, redis_url) -> None:
    server = start_auth(redis_url=redis_url)
    tokens = sign_up(server)
    other = server.stub.Login(
        auth_pb2.LoginRequest(email=jwt_email(server, tokens), password=PASSWORD), timeout=5
    ).tokens
    caller = as_caller(server, tokens)
    listed = server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=caller, timeout=5)
    assert len(listed.sessions) == 2
    assert sum(s.current for s in listed.sessions) == 1
    revoked = server.stub.RevokeOtherSessions(
        auth_pb2.RevokeOtherSessionsRequest(), metadata=caller, timeout=5
    )
    assert revoked.revoked_count == 1
    other_sid = verify(server, other.access_token)["sid"]
    client = redis.Redis.from_url(redis_url)
    assert client.exists(revoked_session_key(other_sid)) == 1
    ttl = client.ttl(revoked_session_key(other_sid))
    assert 900 < ttl <= 900 + 30 + 60
    # ...and on the stream every gateway worker follows.
    published = [
        fields[b"session_id"].decode()
        for _id, fields in client.xrevrange(REVOCATION_STREAM, count=200)
    ]
    assert other_sid in published
    client.close()
    listing = server.stub.ListRevokedSessions(auth_pb2.ListRevokedSessionsRequest(), timeout=5)
    assert other_sid in {s.session_id for s in listing.sessions}
    server.stub.Logout(auth_pb2.LogoutRequest(), metadata=caller, timeout=5)
    with pytest.raises(grpc.RpcError):
        refresh(server, tokens.refresh_token)


def jwt_email(server, tokens) -> str:
    with server.application.database.engine.connect() as connection:
        return str(connection.scalar(select(users.c.email).where(users.c.id == tokens.user_id)))


@pytest.mark.redis
def test_login_throttling_in_redis_answers_resource_exhausted_with_retry_info(
    start_auth, redis_url
) -> None:
    server = start_auth(redis_url=redis_url, login_account_address_free_failures=3)
    email = new_email()
    sign_up(server, email)
    address = ((("x-switchyard-client-address"), f"192.0.2.{uuid.uuid4().int % 250}"),)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as caught:
            server.stub.Login(
                auth_pb2.LoginRequest(email=email, password="wrong one"),
                metadata=address,
                timeout=5,
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.Login(
            auth_pb2.LoginRequest(email=email, password=PASSWORD), metadata=address, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = status_details(caught.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    assert retry.retry_delay.seconds >= 1


def test_password_change_rotates_and_keeps_the_current_session(start_auth) -> None:
    server = start_auth()
    email = new_email()
    first = sign_up(server, email)
    second = server.stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD), timeout=5)
    server.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="a new long phrase"),
        metadata=as_caller(server, second.tokens),
        timeout=5,
    )
    refresh(server, second.tokens.refresh_token)
    with pytest.raises(grpc.RpcError):
        refresh(server, first.refresh_token)
    with server.application.database.engine.connect() as connection:
        rows = connection.execute(select(audit_events)).mappings().all()
    assert "password_changed" in {row["event_type"] for row in rows}
    text = repr([dict(row) for row in rows])
    assert PASSWORD not in text
    assert "a new long phrase" not in text
    assert first.refresh_token not in text


def test_rotate_signing_key_rpc(start_auth) -> None:
    server = start_auth()
    old = sign_up(server)
    rotation = server.stub.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(), timeout=5)
    new = sign_up(server)
    assert jwt.get_unverified_header(new.access_token)["kid"] == rotation.kid
    assert list(rotation.previous_kids) == [jwt.get_unverified_header(old.access_token)["kid"]]
    assert verify(server, old.access_token)["sub"] == old.user_id
    assert verify(server, new.access_token)["sub"] == new.user_id


def test_the_relay_delivers_user_registered_to_the_sink(start_auth, event_sink) -> None:
    server = start_auth()
    recorder, target = event_sink
    tokens = sign_up(server, name="Ann Lee")
    settings = server.application.settings.model_copy(update={"profile_target": target})
    relay = relay_from(server.application.database, settings)
    recorder.failing = True
    relay.step()
    assert relay.failures == 1  # kept, retried later
    recorder.failing = False
    while relay.relay_once():
        pass
    [event] = [e for e in recorder.events if e.key == tokens.user_id]
    payload = unpack_payload(event, auth_events.UserRegistered)
    assert payload is not None
    assert (payload.user_id, payload.display_name) == (tokens.user_id, "Ann Lee")
    assert relay.relay_once() == 0
    assert count(server, outbox) >= 1


@pytest.mark.redis
def test_the_relay_publishes_to_the_users_stream(start_auth, redis_url) -> None:
    server = start_auth(redis_url=redis_url)
    tokens = sign_up(server)
    relay = relay_from(server.application.database, server.application.settings)
    while relay.relay_once():
        pass
    client = redis.Redis.from_url(redis_url)
    keys = [fields[b"key"] for _id, fields in client.xrevrange(stream_name("users"), count=200)]
    client.close()
    assert tokens.user_id.encode() in keys


def test_auth_reads_nothing_from_a_read_url(start_auth) -> None:
    # Every auth read decides something or is a security view: all on the
    # primary (README, Consistency). A read URL nobody answers changes nothing.
    server = start_auth(database_read_url="postgresql+psycopg2://postgres@127.0.0.1:1/none")
    tokens = sign_up(server)
    server.stub.Login(
        auth_pb2.LoginRequest(email=jwt_email(server, tokens), password=PASSWORD), timeout=5
    )
    caller = as_caller(server, tokens)
    listed = server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=caller, timeout=5)
    assert len(listed.sessions) == 2
    server.stub.RevokeOtherSessions(
        auth_pb2.RevokeOtherSessionsRequest(), metadata=caller, timeout=5
    )
    listed = server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=caller, timeout=5)
    assert len(listed.sessions) == 1
