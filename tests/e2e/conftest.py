"""Fixtures that start the real platform (see harness.py) in both of its modes:
`embedded` (SQLite, in-process caches, what `make run` does on a bare laptop)
and `production` (a fresh PostgreSQL database per service and the real Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from e2e.harness import AuthActions, RunningPlatform, start_platform


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", params=["embedded", "production"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    tmp_path = tmp_path_factory.mktemp(f"platform-{request.param}")
    if request.param == "production":
        running = start_platform(
            "production",
            tmp_path,
            request.getfixturevalue("create_postgres_database"),
            request.getfixturevalue("redis_url"),
        )
    else:
        running = start_platform("embedded", tmp_path, None, None)
    yield running
    running.stop()


@pytest.fixture
def api(platform: RunningPlatform) -> Iterator[httpx.Client]:
    with platform.client() as client:
        yield client


@pytest.fixture
def auth(api: httpx.Client) -> AuthActions:
    return AuthActions(api, wait_for_profiles=True)
