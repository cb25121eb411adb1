"""The Flask app against small in-process gRPC servers standing in for auth and profile."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from flask import Flask
from flask.testing import FlaskClient
from gateway.app import create_app, mark_draining
from gateway.backends import AUTH, PROFILE
from gateway.settings import GatewaySettings
from gateway.transcoding.json_values import int64_as_numbers
from google.protobuf import json_format
from switchyard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchyard.profile.v1 import profile_pb2, profile_pb2_grpc
from switchyard_dev.ports import free_port
from switchyard_kit import (
    Backend,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    to_rpc_status,
)

from gateway import metrics as gateway_metrics

USER_ID = "7d0c7a4e-9a43-4f0c-9d7e-1e1c4f5a6b7c"


def metadata_of(context: grpc.ServicerContext) -> dict[str, str]:
    return {key: str(value) for key, value in context.invocation_metadata()}


class AuthDouble(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, jwks: list[dict[str, str]]) -> None:
        self.jwks = jwks
        self.jwks_calls = 0
        self.seen: list[dict[str, str]] = []

    def GetJwks(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.jwks_calls += 1
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.JsonWebKey(**key) for key in self.jwks])

    def Login(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.seen.append(metadata_of(context))
        if request.email == "throttled@example.com":
            context.abort_with_status(
                to_rpc_status(ResourceExhausted("slow down", retry_after_seconds=12), "auth")
            )
        if "@" not in request.email:
            error = InvalidArgument(
                "invalid email", [FieldViolation("email", "is not an email address")]
            )
            context.abort_with_status(to_rpc_status(error, "auth"))
        return auth_pb2.LoginResponse(
            tokens=auth_pb2.Tokens(
                user_id=USER_ID,
                access_token="a",
                refresh_token="r",
                token_type="Bearer",
                expires_in=900,
            )
        )

    def SignUp(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return auth_pb2.SignUpResponse(tokens=auth_pb2.Tokens(user_id=USER_ID, token_type="Bearer"))


class ProfileDouble(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.timeouts: list[float | None] = []
        self.answered: list[Any] = []

    def GetMyProfile(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        metadata = metadata_of(context)
        self.seen.append(metadata)
        self.timeouts.append(context.time_remaining())
        profile = profile_pb2.Profile(user_id=metadata["x-switchyard-user-id"], display_name="Ann")
        profile.create_time.FromSeconds(1767323045)
        return profile_pb2.GetMyProfileResponse(profile=profile)

    def UpdateMyProfile(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        profile = profile_pb2.Profile()
        profile.CopyFrom(request.profile)
        profile.bio = ",".join(request.update_mask.paths)
        self.answered.append(profile)
        return profile_pb2.UpdateMyProfileResponse(profile=profile)

    def GetPublicProfile(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if request.user_id == "slow":
            time.sleep(2.5)
        if request.user_id == "missing":
            context.abort_with_status(to_rpc_status(NotFound("no such profile"), "profile"))
        if request.user_id == "boom":
            context.abort(grpc.StatusCode.INTERNAL, "KeyError at /srv/profile/db.py:42 password=x")
        return profile_pb2.GetPublicProfileResponse(
            profile=profile_pb2.PublicProfile(user_id=request.user_id, display_name="Bo")
        )


def start_server(register: Callable[[grpc.Server], None]) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def closed_port_target() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def auth_double(jwks: list[dict[str, str]]) -> Iterator[tuple[AuthDouble, str]]:
    double = AuthDouble(jwks)
    server, target = start_server(
        lambda s: auth_pb2_grpc.add_AuthServiceServicer_to_server(double, s)
    )
    yield double, target
    server.stop(0)


@pytest.fixture
def profile_double() -> Iterator[tuple[ProfileDouble, str]]:
    double = ProfileDouble()
    server, target = start_server(
        lambda s: profile_pb2_grpc.add_ProfileServiceServicer_to_server(double, s)
    )
    yield double, target
    server.stop(0)


def make_app(auth_target: str, profile_target: str) -> Flask:
    settings = GatewaySettings(jwks_refetch_min_interval_seconds=0)
    backends = [
        Backend("auth", auth_target, AUTH.service),
        Backend("profile", profile_target, PROFILE.service),
    ]
    app = create_app(settings, backends)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(
    auth_double: tuple[AuthDouble, str], profile_double: tuple[ProfileDouble, str]
) -> FlaskClient:
    return make_app(auth_double[1], profile_double[1]).test_client()


@pytest.fixture
def bearer(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=USER_ID)}"}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def test_public_route_transcodes_json(
    client: FlaskClient, auth_double: tuple[AuthDouble, str]
) -> None:
    response = client.post(
        "/v1/auth/login",
        json={"email": "a@example.com", "password": "pw"},
        headers={
            "X-Request-Id": "req-123",
            "User-Agent": "tests/1.0",
            "X-Switchyard-User-Id": "forged",
        },
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "user_id": USER_ID,
        "access_token": "a",
        "refresh_token": "r",
        "token_type": "Bearer",
        "expires_in": 900,
    }
    assert response.headers["X-Request-Id"] == "req-123"
    metadata = auth_double[0].seen[-1]
    assert metadata["x-request-id"] == "req-123"
    assert metadata["x-switchyard-user-agent"] == "tests/1.0"
    assert metadata["x-switchyard-client-address"] == "127.0.0.1"
    assert "x-switchyard-user-id" not in metadata


def test_signup_answers_201(client: FlaskClient) -> None:
    response = client.post("/v1/auth/signup", json={"email": "a@example.com", "password": "pw"})
    assert response.status_code == 201


def test_insane_request_ids_are_replaced(client: FlaskClient) -> None:
    response = client.get("/v1/auth/jwks", headers={"X-Request-Id": "bad id\twith spaces"})
    assert response.headers["X-Request-Id"] != "bad id\twith spaces"
    assert len(response.headers["X-Request-Id"]) == 32


def test_service_field_violations_become_errors(client: FlaskClient) -> None:
    body = assert_problem(
        client.post("/v1/auth/login", json={"email": "nope"}), 400, "INVALID_ARGUMENT"
    )
    assert body["errors"] == [{"field": "email", "description": "is not an email address"}]
    assert body["detail"] == "invalid email"


def test_retry_info_becomes_retry_after(client: FlaskClient) -> None:
    response = client.post("/v1/auth/login", json={"email": "throttled@example.com"})
    assert_problem(response, 429, "RESOURCE_EXHAUSTED")
    assert response.headers["Retry-After"] == "12"


def test_protected_route_passes_the_verified_user(
    client: FlaskClient, bearer: dict[str, str], profile_double: tuple[ProfileDouble, str]
) -> None:
    response = client.get("/v1/profiles/me", headers={**bearer, "X-Switchyard-User-Id": "forged"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["user_id"] == USER_ID
    assert body["create_time"] == "2026-01-02T03:04:05Z"
    assert body["preferences"] == {}
    assert profile_double[0].seen[-1]["x-switchyard-user-id"] == USER_ID
    remaining = profile_double[0].timeouts[-1]
    assert remaining is not None
    assert 1.0 < remaining <= 2.1  # the route's timeout_ms: 2000


def test_answers_render_as_json_format_did(
    client: FlaskClient, bearer: dict[str, str], profile_double: tuple[ProfileDouble, str]
) -> None:
    """The compiled renderer + orjson answer the value MessageToDict (proto
    names, no-presence fields printed) + int64_as_numbers + json.dumps gave."""
    body = {
        "display_name": "Zoë 🐎",
        "bio": 'line\n"two"',
        "preferences": {"theme": "dark", "ключ": "значение"},
    }
    response = client.patch("/v1/profiles/me", json=body, headers=bearer)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    answered = profile_double[0].answered[-1]
    before = int64_as_numbers(
        json_format.MessageToDict(
            answered, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        ),
        answered.DESCRIPTOR,
    )
    assert json.loads(response.data) == before
    assert before["preferences"] == body["preferences"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v1/profiles/me"), ("patch", "/v1/profiles/me"), ("get", "/v1/profiles/someone")],
)
def test_protected_routes_need_a_token(client: FlaskClient, method: str, path: str) -> None:
    response = getattr(client, method)(path, json={})
    assert_problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401(client: FlaskClient, make_token: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {make_token(exp_in=-120)}"}
    assert_problem(client.get("/v1/profiles/me", headers=headers), 401, "UNAUTHENTICATED")


def test_patch_sends_the_mask_of_the_keys_sent(client: FlaskClient, bearer: dict[str, str]) -> None:
    response = client.patch(
        "/v1/profiles/me",
        json={"displayName": "Ann", "preferences": {"theme": "dark"}},
        headers=bearer,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["bio"] == "display_name,preferences"
    assert body["preferences"] == {"theme": "dark"}


def test_bad_patch_body_is_400_naming_the_field(
    client: FlaskClient, bearer: dict[str, str]
) -> None:
    response = client.patch("/v1/profiles/me", json={"display_name": 7}, headers=bearer)
    body = assert_problem(response, 400, "INVALID_ARGUMENT")
    assert body["errors"] == [
        {"field": "display_name", "description": "must be a string, not a number"}
    ]


def test_non_json_content_type_is_415(client: FlaskClient, bearer: dict[str, str]) -> None:
    response = client.patch(
        "/v1/profiles/me",
        data="display_name=x",
        headers=bearer,
        content_type="application/x-www-form-urlencoded",
    )
    assert_problem(response, 415, "INVALID_ARGUMENT")


def test_not_found_and_internal_errors(client: FlaskClient, bearer: dict[str, str]) -> None:
    assert_problem(client.get("/v1/profiles/missing", headers=bearer), 404, "NOT_FOUND")
    body = assert_problem(client.get("/v1/profiles/boom", headers=bearer), 500, "INTERNAL")
    assert "KeyError" not in json.dumps(body)
    assert "password" not in json.dumps(body)


def test_deadline_exceeded_is_504(client: FlaskClient, bearer: dict[str, str]) -> None:
    started = time.monotonic()
    assert_problem(client.get("/v1/profiles/slow", headers=bearer), 504, "DEADLINE_EXCEEDED")
    assert time.monotonic() - started < 2.4


def test_unknown_paths_methods_and_big_bodies_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/nothing"), 404, "NOT_FOUND")
    response = client.delete("/v1/auth/login")
    assert_problem(response, 405, "UNIMPLEMENTED")
    assert "POST" in response.headers["Allow"]
    big = {"email": "a@example.com", "password": "x" * (70 * 1024)}
    assert_problem(client.post("/v1/auth/login", json=big), 413, "INVALID_ARGUMENT")


def test_a_backend_down_fails_only_its_routes(
    auth_double: tuple[AuthDouble, str], bearer: dict[str, str]
) -> None:
    client = make_app(auth_double[1], closed_port_target()).test_client()
    body = assert_problem(client.get("/v1/profiles/me", headers=bearer), 503, "UNAVAILABLE")
    assert "profile" in body["detail"]
    assert client.post("/v1/auth/login", json={"email": "a@example.com"}).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_auth_down_without_keys_is_503_for_protected_routes(
    profile_double: tuple[ProfileDouble, str], bearer: dict[str, str]
) -> None:
    client = make_app(closed_port_target(), profile_double[1]).test_client()
    assert_problem(client.get("/v1/profiles/me", headers=bearer), 503, "UNAVAILABLE")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_jwks_is_fetched_once_per_process(
    client: FlaskClient, bearer: dict[str, str], auth_double: tuple[AuthDouble, str]
) -> None:
    for _ in range(3):
        assert client.get("/v1/profiles/me", headers=bearer).status_code == 200
    assert auth_double[0].jwks_calls == 1


def test_concurrent_requests(client: FlaskClient, bearer: dict[str, str]) -> None:
    results: list[int] = []

    def call() -> None:
        results.append(client.get("/v1/profiles/me", headers=bearer).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8


def test_operational_endpoints(client: FlaskClient) -> None:
    client.get("/v1/auth/jwks")
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    # /metrics is served on GATEWAY_METRICS_PORT only (test_private_ports.py):
    # the public app answers 404 there, and renders the same text for that port.
    assert client.get("/metrics").status_code == 404
    metrics = gateway_metrics.render()[0].decode()
    assert 'http_requests_total{method="GET",route="/v1/auth/jwks",status="200"}' in metrics
    assert "http_request_duration_seconds_bucket" in metrics
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert b"swagger-ui-bundle.js" in docs.data
    assert b"https://" not in docs.data
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.data) > 100_000
    asset.close()
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404


def test_draining_turns_readiness_off(client: FlaskClient) -> None:
    mark_draining(client.application)
    assert_problem(client.get("/readyz"), 503, "UNAVAILABLE")
    assert client.get("/healthz").status_code == 200
