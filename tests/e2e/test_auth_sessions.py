"""Sessions through the gateway: refresh rotation and reuse detection, logout
and revocation (refresh and access tokens), sessions, password change,
throttling, key rotation, and the profile created from the signup event."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import jwt
import pytest
from switchyard.auth.v1 import auth_pb2, auth_pb2_grpc

from e2e.harness import Account, AuthActions, RunningPlatform

# How soon a revocation reaches the gateway: at once with Redis (production
# mode); within GATEWAY_REVOCATION_POLL_INTERVAL_SECONDS (2 s) plus one RPC
# without it (embedded mode).
# With Redis each gateway worker follows auth's revocation stream (milliseconds);
# without it the gateway polls auth every 2 s (services/auth/README.md).
REVOCATION_BOUND_SECONDS = {"production": 0.1, "embedded": 2.0}


def problem_code(response: httpx.Response) -> str:
    return str(response.json().get("code"))


def login(api: httpx.Client, account: Account, password: str | None = None) -> httpx.Response:
    return api.post(
        "/v1/auth/login", json={"email": account.email, "password": password or account.password}
    )


def refresh(api: httpx.Client, token: str) -> httpx.Response:
    return api.post("/v1/auth/refresh", json={"refresh_token": token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused_within(api: httpx.Client, token: str, platform: RunningPlatform) -> float:
    """Seconds until the gateway refuses `token` (asserting the mode's bound)."""
    started = time.monotonic()
    bound = REVOCATION_BOUND_SECONDS[platform.mode]
    while True:
        response = api.get("/v1/profiles/me", headers=bearer(token))
        elapsed = time.monotonic() - started
        if response.status_code == 401:
            return elapsed
        assert response.status_code == 200, response.text
        assert elapsed <= bound + 1.0, f"still accepted after {elapsed:.1f}s"
        time.sleep(0.1)


def test_refresh_rotates_and_the_old_token_is_refused(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup()
    first = refresh(api, account.refresh_token)
    assert first.status_code == 200, first.text
    pair = first.json()
    assert pair["refresh_token"] != account.refresh_token
    assert api.get("/v1/profiles/me", headers=bearer(pair["access_token"])).status_code == 200
    time.sleep(1.2)  # past the overlap window (AUTH_REFRESH_REUSE_OVERLAP_SECONDS=1)
    reused = refresh(api, account.refresh_token)
    assert reused.status_code == 401
    assert "already used" in reused.json()["detail"]
    # Reuse revoked the family: the legitimate holder's new token is dead too.
    assert refresh(api, pair["refresh_token"]).status_code == 401


def test_concurrent_refreshes_within_the_overlap_both_succeed(
    api: httpx.Client, auth: AuthActions
) -> None:
    account = auth.signup()
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: refresh(api, account.refresh_token), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    for answer in answers:
        assert refresh(api, answer.json()["refresh_token"]).status_code == 200


def test_reuse_revokes_the_access_tokens_too(
    api: httpx.Client, auth: AuthActions, platform: RunningPlatform
) -> None:
    account = auth.signup()
    pair = refresh(api, account.refresh_token).json()
    time.sleep(1.2)
    assert refresh(api, account.refresh_token).status_code == 401
    refused_within(api, pair["access_token"], platform)


def test_logout_stops_the_refresh_and_the_access_token(
    api: httpx.Client, auth: AuthActions, platform: RunningPlatform
) -> None:
    account = auth.signup()
    other = login(api, account).json()  # a second session stays alive
    response = api.post(
        "/v1/auth/logout", headers=account.headers, json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 204, response.text
    assert refresh(api, account.refresh_token).status_code == 401
    elapsed = refused_within(api, account.access_token, platform)
    assert elapsed <= REVOCATION_BOUND_SECONDS[platform.mode] + 1.0
    assert api.get("/v1/profiles/me", headers=bearer(other["access_token"])).status_code == 200
    assert refresh(api, other["refresh_token"]).status_code == 200


def test_sessions_list_revoke_one_and_revoke_others(
    api: httpx.Client, auth: AuthActions, platform: RunningPlatform
) -> None:
    account = auth.signup()
    laptop = api.post(
        "/v1/auth/login",
        json={"email": account.email, "password": account.password},
        headers={"User-Agent": "laptop/1.0"},
    ).json()
    phone = api.post(
        "/v1/auth/login",
        json={"email": account.email, "password": account.password},
        headers={"User-Agent": "phone/2.0"},
    ).json()
    listed = api.get("/v1/auth/sessions", headers=bearer(laptop["access_token"]))
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["sessions"]
    assert len(sessions) == 3
    [current] = [s for s in sessions if s.get("current")]
    assert current["user_agent"] == "laptop/1.0"
    assert {"session_id", "create_time", "last_used_time", "expire_time"} <= set(current)

    phone_sid = jwt.decode(phone["access_token"], options={"verify_signature": False})["sid"]
    deleted = api.delete(f"/v1/auth/sessions/{phone_sid}", headers=bearer(laptop["access_token"]))
    assert deleted.status_code == 204, deleted.text
    assert refresh(api, phone["refresh_token"]).status_code == 401
    refused_within(api, phone["access_token"], platform)
    missing = api.delete(
        f"/v1/auth/sessions/{uuid.uuid4()}", headers=bearer(laptop["access_token"])
    )
    assert missing.status_code == 404

    others = api.post(
        "/v1/auth/sessions:revoke-others", headers=bearer(laptop["access_token"]), json={}
    )
    assert others.status_code == 200, others.text
    assert others.json()["revoked_count"] == 1
    assert refresh(api, account.refresh_token).status_code == 401
    refused_within(api, account.access_token, platform)
    remaining = api.get("/v1/auth/sessions", headers=bearer(laptop["access_token"])).json()
    assert [s["current"] for s in remaining["sessions"]] == [True]


def test_password_change(api: httpx.Client, auth: AuthActions, platform: RunningPlatform) -> None:
    account = auth.signup()
    current = login(api, account).json()
    wrong = api.post(
        "/v1/auth/password",
        headers=bearer(current["access_token"]),
        json={"current_password": "not my password", "new_password": "a brand new passphrase"},
    )
    assert wrong.status_code == 401
    weak = api.post(
        "/v1/auth/password",
        headers=bearer(current["access_token"]),
        json={"current_password": account.password, "new_password": "password"},
    )
    assert weak.status_code == 400
    assert weak.json()["errors"][0]["field"] == "new_password"
    changed = api.post(
        "/v1/auth/password",
        headers=bearer(current["access_token"]),
        json={"current_password": account.password, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 204, changed.text
    assert refresh(api, account.refresh_token).status_code == 401  # the other session ended
    refused_within(api, account.access_token, platform)
    assert refresh(api, current["refresh_token"]).status_code == 200  # this one did not
    assert login(api, account).status_code == 401
    assert login(api, account, "a brand new passphrase").status_code == 200


def test_throttling_then_recovery_and_another_account_unaffected(
    api: httpx.Client, auth: AuthActions
) -> None:
    victim = auth.signup()
    bystander = auth.signup()
    for _ in range(5):  # AUTH_LOGIN_ACCOUNT_ADDRESS_FREE_FAILURES
        assert login(api, victim, "wrong password!").status_code == 401
    throttled = login(api, victim)  # even the right password must wait
    assert throttled.status_code == 429, throttled.text
    assert problem_code(throttled) == "RESOURCE_EXHAUSTED"
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 900
    assert login(api, bystander).status_code == 200
    time.sleep(retry_after)
    assert login(api, victim).status_code == 200
    # The success reset the account's counter.
    assert login(api, victim, "wrong password!").status_code == 401
    assert login(api, victim).status_code == 200


def _auth_stub(platform: RunningPlatform) -> tuple[grpc.Channel, auth_pb2_grpc.AuthServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{platform.config.ports['auth']}")
    return channel, auth_pb2_grpc.AuthServiceStub(channel)


def _accepted_soon(api: httpx.Client, token: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get("/v1/profiles/me", headers=bearer(token)).status_code == 200:
            return True
        time.sleep(0.2)
    return False


def test_key_rotation_keeps_old_tokens_valid_and_new_ones_work(
    api: httpx.Client, auth: AuthActions, platform: RunningPlatform
) -> None:
    old = auth.signup()
    old_kid = jwt.get_unverified_header(old.access_token)["kid"]
    channel, stub = _auth_stub(platform)
    with channel:
        rotation = stub.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(), timeout=10)
    assert old_kid in rotation.previous_kids
    new = login(api, old).json()
    assert jwt.get_unverified_header(new["access_token"])["kid"] == rotation.kid
    # The gateway learns the new kid without a restart (kid miss -> refetch).
    assert _accepted_soon(api, new["access_token"])
    assert api.get("/v1/profiles/me", headers=old.headers).status_code == 200
    kids = {key["kid"] for key in api.get("/v1/auth/jwks").json()["keys"]}
    assert {old_kid, rotation.kid} <= kids
    # The operator RPC is not reachable over HTTP.
    assert api.post("/v1/auth/signing-keys:rotate", json={}).status_code == 404


def test_rotate_signing_key_command(platform: RunningPlatform) -> None:
    env = {**platform.platform.components[0].env}
    env["AUTH_DATABASE_URL"] = platform.database_url("auth")
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", "rotate-signing-key"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "new signing key " in result.stdout


@pytest.mark.parametrize("display_name", ["Katherine Johnson", ""])
def test_signup_profile_arrives_through_the_event_path(
    api: httpx.Client, auth: AuthActions, display_name: str
) -> None:
    response = api.post(
        "/v1/auth/signup",
        json={
            "email": f"user-{uuid.uuid4().hex[:12]}@example.com",
            "password": "correct horse battery staple",
            "display_name": display_name,
        },
    )
    assert response.status_code == 201, response.text
    tokens = response.json()
    account = Account("", "", tokens["user_id"], tokens["access_token"], tokens["refresh_token"])
    # The public view never creates a profile: a 200 here came from the event.
    profile = auth.wait_for_profile(account)
    expected = display_name or f"user-{tokens['user_id'][:8]}"
    assert profile["display_name"] == expected
