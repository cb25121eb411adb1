"""The curl journey of the README, through the real gateway and services."""

from __future__ import annotations

import uuid

import httpx
import jwt

from e2e.harness import AuthActions, RunningPlatform

PROBLEM = "application/problem+json"


def test_signup_login_and_profile_journey(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup(display_name="Ada Lovelace")

    login = api.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["user_id"] == account.user_id
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0

    jwks = api.get("/v1/auth/jwks")
    assert jwks.status_code == 200
    keys = {key["kid"]: key for key in jwks.json()["keys"]}
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    assert keys[kid]["kty"] == "OKP"
    assert keys[kid]["alg"] == "EdDSA"

    me = api.get("/v1/profiles/me", headers=account.headers)
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == account.user_id
    assert me.json()["display_name"] == "Ada Lovelace"

    patched = api.patch(
        "/v1/profiles/me",
        headers=account.headers,
        json={"bio": "Analyst", "locale": "en-GB", "preferences": {"theme": "dark"}},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["bio"], body["locale"], body["preferences"]) == (
        "Analyst",
        "en-GB",
        {"theme": "dark"},
    )
    assert body["display_name"] == "Ada Lovelace"  # not sent, so not changed

    again = api.get("/v1/profiles/me", headers=account.headers)
    assert again.json()["bio"] == "Analyst"


def test_another_user_sees_only_the_public_view(api: httpx.Client, auth: AuthActions) -> None:
    owner = auth.signup(display_name="Grace Hopper")
    api.patch(
        "/v1/profiles/me",
        headers=owner.headers,
        json={"bio": "Compilers", "locale": "en-US", "preferences": {"secret_hobby": "chess"}},
    ).raise_for_status()
    viewer = auth.signup(display_name="Viewer")

    public = api.get(f"/v1/profiles/{owner.user_id}", headers=viewer.headers)
    assert public.status_code == 200, public.text
    assert public.json()["display_name"] == "Grace Hopper"
    assert public.json()["bio"] == "Compilers"
    assert "preferences" not in public.json()
    assert "locale" not in public.json()


def test_duplicate_email_is_a_conflict(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup()
    response = api.post(
        "/v1/auth/signup", json={"email": account.email, "password": "another long passphrase"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "ALREADY_EXISTS"


def test_wrong_password_and_unknown_email_answer_the_same(
    api: httpx.Client, auth: AuthActions
) -> None:
    account = auth.signup()
    # A fresh unknown address: failed logins are counted per account in the
    # shared test Redis for a day, so a fixed one would be throttled by earlier runs.
    nobody = f"nobody-{uuid.uuid4().hex[:12]}@example.com"
    wrong = api.post("/v1/auth/login", json={"email": account.email, "password": "wrong password!"})
    unknown = api.post("/v1/auth/login", json={"email": nobody, "password": "wrong password!"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_service_endpoints(api: httpx.Client, platform: RunningPlatform) -> None:
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 200
    # /metrics is private: 404 on the public port, served on the metrics port.
    assert api.get("/metrics").status_code == 404
    metrics = httpx.get(platform.gateway_metrics_url, timeout=10)
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    for path in ("/v1/auth/signup", "/v1/auth/login", "/v1/auth/jwks", "/v1/profiles/me"):
        assert path in spec["paths"]
    assert "/v1/profiles/{user_id}" in spec["paths"]
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
