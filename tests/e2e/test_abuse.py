"""Abuse resistance at the gateway (issue 12), through the real platform in
both modes: the client address behind a trusted proxy, per-address limits of
the anonymous routes (in Redis, shared by both gateway workers; in process
without Redis, so one worker there), chunked bodies over the limit, and
/metrics only on its private port.

The platform trusts one proxy hop (as behind the k8s ingress), so each test
chooses its client addresses with X-Forwarded-For, as the ingress would
write them; fresh random addresses keep the platforms that share the test
Redis from sharing budgets.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from e2e.harness import RunningPlatform, start_platform

LIMIT = 3  # per minute, for each of signup, login and refresh
BODY_LIMIT = 65536


@pytest.fixture(scope="module", params=["embedded", "production"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    production = request.param == "production"
    env = {
        "GATEWAY_TRUSTED_PROXY_HOPS": "1",
        "GATEWAY_RATE_LIMIT_SIGNUP": f"{LIMIT}/minute",
        "GATEWAY_RATE_LIMIT_LOGIN": f"{LIMIT}/minute",
        "GATEWAY_RATE_LIMIT_REFRESH": f"{LIMIT}/minute",
        # In-process limits are per worker: one worker makes them exact.
        "GATEWAY_WORKERS": "2" if production else "1",
    }
    running = start_platform(
        request.param,
        tmp_path_factory.mktemp(f"abuse-{request.param}"),
        request.getfixturevalue("create_postgres_database") if production else None,
        request.getfixturevalue("redis_url") if production else None,
        extra_env=env,
    )
    yield running
    running.stop()


@pytest.fixture
def api(guarded: RunningPlatform) -> Iterator[httpx.Client]:
    with guarded.client() as client:
        yield client


def address() -> str:
    """A fresh address of the documentation prefix (RFC 3849) for one client."""
    return str(ipaddress.IPv6Address("2001:db8::") + uuid.uuid4().int % 2**64)


def signup_body() -> dict[str, str]:
    return {
        "email": f"user-{uuid.uuid4().hex[:12]}@example.com",
        "password": "correct horse battery staple",
    }


def forwarded(client_address: str) -> dict[str, str]:
    return {"X-Forwarded-For": client_address}


def test_forwarded_address_from_the_trusted_hop_is_the_client_address(
    api: httpx.Client,
) -> None:
    client = address()
    # A client's own forged entry comes first; the ingress appends the peer it saw.
    headers = {"X-Forwarded-For": f"10.9.9.9, {client}"}
    signup = api.post("/v1/auth/signup", json=signup_body(), headers=headers)
    assert signup.status_code == 201, signup.text
    token = signup.json()["access_token"]
    sessions = api.get("/v1/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert sessions.status_code == 200, sessions.text
    assert [s["client_address"] for s in sessions.json()["sessions"]] == [client]


ROUTES = {
    "signup": signup_body,
    # A fresh unknown e-mail each time: auth's own per-account throttle stays out of it.
    "login": lambda: {**signup_body(), "password": "wrong password"},
    "refresh": lambda: {"refresh_token": "not-a-token"},
}


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_anonymous_routes_are_limited_per_client_address(api: httpx.Client, name: str) -> None:
    path = f"/v1/auth/{name}"
    attacker, bystander = address(), address()
    answers = [
        api.post(path, json=ROUTES[name](), headers=forwarded(attacker)) for _ in range(LIMIT)
    ]
    assert all(a.status_code != 429 for a in answers), [a.text for a in answers]
    refused = api.post(path, json=ROUTES[name](), headers=forwarded(attacker))
    assert refused.status_code == 429, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["code"] == "RESOURCE_EXHAUSTED"
    # Another address keeps its own budget.
    other = api.post(path, json=ROUTES[name](), headers=forwarded(bystander))
    assert other.status_code != 429, other.text


def test_chunked_body_over_the_limit_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        # Valid JSON whose first 64 KiB are a well-formed prefix: cut there and
        # processed, it would reach auth as a signup.
        yield b'{"email": "chunked@example.com", "password": "correct horse battery", '
        yield b'"display_name": "' + b"a" * (BODY_LIMIT * 2) + b'"}'

    response = api.post(
        "/v1/auth/signup",
        content=chunks(),
        headers={"Content-Type": "application/json", **forwarded(address())},
    )
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 413
    # A chunked body within the limit is served as before.
    small = api.post(
        "/v1/auth/signup",
        content=iter([b'{"email": "not-an-email", ', b'"password": "x"}']),
        headers={"Content-Type": "application/json", **forwarded(address())},
    )
    assert small.status_code == 400, small.text


def test_metrics_only_on_the_private_port(api: httpx.Client, guarded: RunningPlatform) -> None:
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 200
    public = api.get("/metrics")
    assert public.status_code == 404
    assert "http_requests_total" not in public.text
    api.get("/v1/auth/jwks")
    private = httpx.get(guarded.gateway_metrics_url, timeout=10)
    assert private.status_code == 200
    # The workers' samples, aggregated by the master.
    pattern = r'^http_requests_total\{method="GET",route="/v1/auth/jwks",status="200"\} [1-9]'
    assert re.search(pattern, private.text, re.MULTILINE), private.text[:2000]
    assert "gateway_queue_wait_seconds_bucket" in private.text
    # Redis up (or not configured): the limits never failed open.
    assert "gateway_rate_limit_errors_total{" not in private.text
