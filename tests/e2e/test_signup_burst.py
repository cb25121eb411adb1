"""A burst of signups does not starve signed-in users (issue 12).

Each signup costs auth an argon2id hash (here at the production cost). All
of auth's routes used to share one gateway bulkhead of 6 calls per worker,
so 36 parallel signups made another user's GET /v1/auth/sessions answer
503. Signup, login and refresh now have a concurrency limit of their own
(proto option `expensive`; adaptive since issue 16); the test sends 50
parallel signups from one address (the per-address limit is off here, as if
they came from 50 addresses) while a signed-in user lists their sessions,
and requires every one of those calls to succeed. Bounded: 50 requests, each with a 15 s timeout.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from e2e.harness import AuthActions, RunningPlatform, start_platform

BURST = 50
SESSIONS_CALLS = 20


@pytest.fixture(scope="module")
def hashing_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    running = start_platform(
        "production",
        tmp_path_factory.mktemp("signup-burst"),
        request.getfixturevalue("create_postgres_database"),
        request.getfixturevalue("redis_url"),
        # auth's defaults (OWASP's argon2id cost), not the suite's cheap hashing.
        extra_env={"AUTH_ARGON2_TIME_COST": "2", "AUTH_ARGON2_MEMORY_COST_KIB": "19456"},
    )
    yield running
    running.stop()


def signup(base_url: str) -> int:
    body = {
        "email": f"burst-{uuid.uuid4().hex[:12]}@example.com",
        "password": "correct horse battery staple",
    }
    with httpx.Client(base_url=base_url, timeout=15) as client:
        return client.post("/v1/auth/signup", json=body).status_code


def test_signup_burst_leaves_signed_in_users_served(hashing_platform: RunningPlatform) -> None:
    with hashing_platform.client() as api:
        user = AuthActions(api).signup()
        with ThreadPoolExecutor(max_workers=BURST) as pool:
            started = time.monotonic()
            signups = [pool.submit(signup, hashing_platform.base_url) for _ in range(BURST)]
            sessions: list[int] = []
            for _ in range(SESSIONS_CALLS):
                sessions.append(api.get("/v1/auth/sessions", headers=user.headers).status_code)
                if all(f.done() for f in signups):
                    break
                time.sleep(0.05)
            outcomes = Counter(f.result() for f in signups)
            elapsed = time.monotonic() - started
    print(f"signups {dict(outcomes)}; sessions {dict(Counter(sessions))}; {elapsed:.1f}s")
    assert sessions
    assert set(sessions) == {200}, Counter(sessions)
    # The burst itself: served or shed (503/429 with Retry-After), never a 500.
    assert set(outcomes) <= {201, 429, 503}, outcomes
    assert outcomes[201] > 0
