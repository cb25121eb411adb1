"""Abuse resistance of auth through the gateway, in both modes: login
throttling that punishes only the attacker (counters in-process embedded, in
Redis in production), and text fields that refuse control characters and
bidi overrides.

The throttling tests run on a platform of their own with the default
per-address limit (the shared one lifts it: every test there logs in from
127.0.0.1). Each client connects from its own loopback address
(127.x.y.z, all of 127/8 is loopback on Linux), which is the address the
gateway passes to auth; they are random per run, because Redis keeps the
counters across runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.harness import Account, AuthActions, RunningPlatform, start_platform

PASSWORD = "correct horse battery staple"
ADDRESS_FREE_FAILURES = 20  # the default AUTH_LOGIN_ADDRESS_FREE_FAILURES


@pytest.fixture(scope="module", params=["embedded", "production"])
def throttle_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    tmp_path: Path = tmp_path_factory.mktemp(f"throttle-{request.param}")
    production = request.param == "production"
    running = start_platform(
        request.param,
        tmp_path,
        request.getfixturevalue("create_postgres_database") if production else None,
        request.getfixturevalue("redis_url") if production else None,
        extra_env={"AUTH_LOGIN_ADDRESS_FREE_FAILURES": str(ADDRESS_FREE_FAILURES)},
    )
    yield running
    running.stop()


class Clients:
    """HTTP clients of the platform, each from a loopback address of its own."""

    def __init__(self, platform: RunningPlatform) -> None:
        self.platform = platform
        self.opened: list[httpx.Client] = []

    def new(self) -> httpx.Client:
        octets = uuid.uuid4().bytes
        address = f"127.{octets[0] % 254 + 1}.{octets[1]}.{octets[2] % 254 + 1}"
        client = httpx.Client(
            base_url=self.platform.base_url,
            timeout=10,
            transport=httpx.HTTPTransport(local_address=address),
        )
        self.opened.append(client)
        return client


@pytest.fixture
def clients(throttle_platform: RunningPlatform) -> Iterator[Clients]:
    made = Clients(throttle_platform)
    yield made
    for client in made.opened:
        client.close()


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "RESOURCE_EXHAUSTED"
    assert 1 <= int(response.headers["Retry-After"]) <= 900


def fresh_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def test_failures_for_other_accounts_never_block_an_owner_who_logged_in_from_there(
    clients: Clients,
) -> None:
    home, office = clients.new(), clients.new()
    owner = AuthActions(home).signup()
    stranger = AuthActions(home).signup()
    assert login(office, owner.email).status_code == 200  # the owner works there
    # Credential stuffing from the office's address (one NAT): random e-mails.
    failures = 0
    while (response := login(office, fresh_email(), "a guessed password")).status_code == 401:
        failures += 1
        assert failures <= ADDRESS_FREE_FAILURES + 5
    assert_throttled(response)
    assert failures == ADDRESS_FREE_FAILURES
    # Blocked there for accounts it never signed in to; the owner is not.
    assert_throttled(login(office, stranger.email))
    assert login(office, owner.email).status_code == 200
    assert login(clients.new(), stranger.email).status_code == 200


def test_an_attackers_wrong_passwords_do_not_lock_the_owner_out_from_a_new_address(
    clients: Clients,
) -> None:
    owner: Account = AuthActions(clients.new()).signup()
    attacker = clients.new()
    statuses = [login(attacker, owner.email, "a guessed password").status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    # Brute force on one account from one address: still 429 + Retry-After ...
    assert_throttled(login(attacker, owner.email))
    # ... and the owner signs in from an address never seen before.
    assert login(clients.new(), owner.email).status_code == 200


# Text fields: one rule (switchyard_kit.text) at signup and in the profile.
UNSAFE_ONE_LINE = ["Ann\u202eeeL", "\u2066Ann\u2069", "Ann\x07", "Ann\x1b[31mLee", "Ann\u2028Lee"]
UNSAFE_MULTI_LINE = ["line\u202eenil", "bell\x07", "escape \x1b[2J", "nul\x00"]


@pytest.mark.parametrize("name", UNSAFE_ONE_LINE)
def test_signup_refuses_an_unsafe_display_name_and_writes_nothing(
    api: httpx.Client, name: str
) -> None:
    email = fresh_email()
    response = api.post(
        "/v1/auth/signup", json={"email": email, "password": PASSWORD, "display_name": name}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert {error["field"] for error in response.json()["errors"]} == {"display_name"}
    assert login(api, email).status_code == 401  # no account was made


@pytest.mark.parametrize(
    ("field", "value"),
    [("display_name", value) for value in UNSAFE_ONE_LINE]
    + [("bio", value) for value in UNSAFE_MULTI_LINE],
)
def test_a_profile_update_with_unsafe_text_is_400_and_changes_nothing(
    api: httpx.Client, auth: AuthActions, field: str, value: str
) -> None:
    account = auth.signup(display_name="Before")
    before = api.get("/v1/profiles/me", headers=account.headers).json()
    response = api.patch("/v1/profiles/me", headers=account.headers, json={field: value})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert field in {error["field"] for error in response.json()["errors"]}
    assert api.get("/v1/profiles/me", headers=account.headers).json() == before


def test_a_bio_keeps_its_line_breaks(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup()
    bio = "first line\nsecond line\tend"
    response = api.patch("/v1/profiles/me", headers=account.headers, json={"bio": bio})
    assert response.status_code == 200, response.text
    assert api.get("/v1/profiles/me", headers=account.headers).json()["bio"] == bio
