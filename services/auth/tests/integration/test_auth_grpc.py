"""Signup, login and JWKS through a real gRPC server on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import grpc
import jwt
import pytest
from auth_service.adapters.tables import outbox, refresh_tokens, sessions, signing_keys, users
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from switchyard.auth.v1 import auth_pb2
from switchyard_kit import status_details

PASSWORD = "a long passphrase"


def jwks_of(server) -> jwt.PyJWKSet:
    response = server.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=5)
    return jwt.PyJWKSet.from_dict(
        {
            "keys": [
                {"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.use}
                for k in response.keys
            ]
        }
    )


def verify(server, token: str) -> dict:
    header = jwt.get_unverified_header(token)
    # The access-token type (RFC 9068), which the gateway's verifier requires.
    assert header["typ"] == "at+jwt"
    key = jwks_of(server)[header["kid"]]
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience="switchyard-api",
        issuer="switchyard-auth",
        options={"require": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "sid"]},
    )


def sign_up(server, email: str = "ann@example.com", password: str = PASSWORD, name: str = "Ann"):
    request = auth_pb2.SignUpRequest(email=email, password=password, display_name=name)
    return server.stub.SignUp(request, timeout=5).tokens


def count(server, table) -> int:
    with server.application.database.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)))


def details(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[tuple[str, str]]]:
    status = status_details(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations += [(v.field, v.description) for v in bad_request.field_violations]
    return info, violations


def test_sign_up_then_login_then_jwks_verifies_the_tokens(auth_server) -> None:
    signed_up = sign_up(auth_server, email="Ann@Example.com")
    assert signed_up.token_type == "Bearer"
    assert signed_up.expires_in == 900
    claims = verify(auth_server, signed_up.access_token)
    assert claims["sub"] == signed_up.user_id
    assert claims["exp"] - claims["iat"] == 900

    logged_in = auth_server.stub.Login(
        auth_pb2.LoginRequest(email="ann@EXAMPLE.com", password=PASSWORD), timeout=5
    ).tokens
    assert logged_in.user_id == signed_up.user_id
    login_claims = verify(auth_server, logged_in.access_token)
    assert login_claims["sub"] == signed_up.user_id
    assert login_claims["sid"] != claims["sid"]
    assert count(auth_server, users) == 1
    assert count(auth_server, sessions) == 2


def test_sign_up_creates_the_profile_through_create_profile(auth_server, recorded_profiles) -> None:
    tokens = sign_up(auth_server, name="  Ann Lee ")
    [request] = recorded_profiles.created
    assert (request.user_id, request.display_name) == (tokens.user_id, "Ann Lee")


def test_sign_up_answers_when_create_profile_fails_and_keeps_the_event(
    auth_server, recorded_profiles
) -> None:
    recorded_profiles.failing = True
    deferred = {"code": "UNAVAILABLE"}
    before = REGISTRY.get_sample_value("auth_signup_profiles_deferred_total", deferred) or 0.0
    tokens = sign_up(auth_server)
    assert tokens.user_id
    assert recorded_profiles.created == []
    assert REGISTRY.get_sample_value("auth_signup_profiles_deferred_total", deferred) == before + 1
    assert count(auth_server, outbox) == 1  # UserRegistered: the profile comes from it


def test_jwks_lists_the_ed25519_key(auth_server) -> None:
    response = auth_server.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=5)
    (key,) = response.keys
    assert (key.kty, key.crv, key.alg, key.use) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert key.kid
    assert len(key.x) == 43


def test_refresh_token_is_stored_only_as_its_sha256(auth_server) -> None:
    tokens = sign_up(auth_server)
    with auth_server.application.database.engine.connect() as connection:
        row = connection.execute(select(refresh_tokens)).mappings().one()
    assert row["token_hash"] == hashlib.sha256(tokens.refresh_token.encode()).hexdigest()
    assert tokens.refresh_token not in {str(value) for value in row.values()}
    assert row["expires_at"].tzinfo is not None


def test_duplicate_email_is_already_exists_with_error_info(auth_server) -> None:
    sign_up(auth_server)
    with pytest.raises(grpc.RpcError) as caught:
        sign_up(auth_server, email="ANN@Example.com", password="another long passphrase")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info, _ = details(caught.value)
    assert info.reason == "EMAIL_TAKEN"
    assert info.metadata["service"] == "auth"
    assert count(auth_server, users) == 1


def test_concurrent_signups_with_one_email_create_one_account(auth_server) -> None:
    def attempt(_: int) -> grpc.StatusCode:
        try:
            sign_up(auth_server, email="race@example.com")
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = sorted(pool.map(attempt, range(4)), key=lambda code: code.name)
    assert codes.count(grpc.StatusCode.OK) == 1
    assert codes.count(grpc.StatusCode.ALREADY_EXISTS) == 3
    assert count(auth_server, users) == 1


@pytest.mark.parametrize(
    ("email", "password", "name", "fields"),
    [
        ("not-an-email", PASSWORD, "Ann", {"email"}),
        ("ann@example.com", "short", "Ann", {"password"}),
        ("ann@example.com", "password123", "Ann", {"password"}),
        ("ann@example.com", PASSWORD, "Ann\nLee", {"display_name"}),
        ("", "", "", {"email", "password"}),
    ],
)
def test_bad_input_is_invalid_argument_and_nothing_is_written(
    *, auth_server, email, password, name, fields
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        sign_up(auth_server, email=email, password=password, name=name)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations = details(caught.value)
    assert info.reason == "INVALID_ARGUMENT"
    assert {field for field, _ in violations} == fields
    assert all(description for _, description in violations)
    assert count(auth_server, users) == 0
    assert count(auth_server, sessions) == 0
    assert count(auth_server, outbox) == 0


def test_unknown_email_and_wrong_password_fail_identically(auth_server) -> None:
    sign_up(auth_server)
    failures = []
    for email, password in [("ann@example.com", "wrong passphrase"), ("bob@example.com", PASSWORD)]:
        with pytest.raises(grpc.RpcError) as caught:
            auth_server.stub.Login(auth_pb2.LoginRequest(email=email, password=password), timeout=5)
        info, violations = details(caught.value)
        failures.append((caught.value.code(), caught.value.details(), info.reason, violations))
    assert failures[0] == failures[1]
    assert failures[0][0] == grpc.StatusCode.UNAUTHENTICATED
    assert failures[0][2] == "INVALID_CREDENTIALS"


def test_login_without_fields_is_invalid_argument(auth_server) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        auth_server.stub.Login(auth_pb2.LoginRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in details(caught.value)[1]} == {"email", "password"}


def test_signing_key_survives_a_restart(start_auth) -> None:
    first = start_auth()
    tokens = sign_up(first)
    kid = jwt.get_unverified_header(tokens.access_token)["kid"]
    first.stop()

    second = start_auth()
    assert [key.kid for key in second.stub.GetJwks(auth_pb2.GetJwksRequest()).keys] == [kid]
    assert verify(second, tokens.access_token)["sub"] == tokens.user_id
    logged_in = second.stub.Login(
        auth_pb2.LoginRequest(email="ann@example.com", password=PASSWORD), timeout=5
    ).tokens
    assert jwt.get_unverified_header(logged_in.access_token)["kid"] == kid


def test_private_signing_key_is_encrypted_at_rest(auth_server) -> None:
    response = auth_server.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=5)
    with auth_server.application.database.engine.connect() as connection:
        row = connection.execute(select(signing_keys)).mappings().one()
    assert row["kid"] == response.keys[0].kid
    assert row["key_encryption"] == "fernet"
    assert row["private_key"].startswith("gAAAA")  # a Fernet token


def test_ready_when_the_database_answers(auth_server) -> None:
    health = health_pb2_grpc.HealthStub(auth_server.channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    response = health.Check(
        health_pb2.HealthCheckRequest(service="switchyard.auth.v1.AuthService"), timeout=5
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
