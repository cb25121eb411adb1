"""Pytest fixtures for tests against the real PostgreSQL and Redis.

Registered as a pytest plugin by the root conftest.py. A test that asks for
`postgres_database_url` gets a freshly created, uniquely named database that
is dropped afterwards. When the server is unreachable the test is skipped on
a laptop but fails under CI (CI=true): a skipped integration test must never
pass for a green run.

Servers: TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
and TEST_REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
# Test databases dropped at once at the end of a session (connections of its own).
DROP_CONCURRENCY = 8


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(what: str, error: Exception) -> None:
    """Skip on a laptop, fail under CI."""
    message = f"{what} is unreachable: {type(error).__name__}: {error}"
    if running_in_ci():
        pytest.fail(f"{message} (CI=true: integration tests must run, not skip)")
    pytest.skip(message)


def postgres_server_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def redis_server_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance database URL, checked to be reachable."""
    url = postgres_server_url()
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def create_postgres_database(postgres_admin_url: str) -> Iterator[Callable[[str], str]]:
    """A factory: `create_postgres_database("auth")` makes an empty database
    named `test_auth_<random>` and returns its URL; all are dropped at the end."""
    admin = create_engine(
        postgres_admin_url, isolation_level="AUTOCOMMIT", pool_size=DROP_CONCURRENCY
    )
    created: list[str] = []

    def create(label: str) -> str:
        name = f"test_{label}_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)

    yield create

    def drop(name: str) -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    # Side by side: each DROP DATABASE waits for a checkpoint (~2 s on a busy
    # machine), and drops in flight together share one. One after another, a
    # session's hundred-odd databases took minutes.
    with ThreadPoolExecutor(max_workers=DROP_CONCURRENCY) as pool:
        list(pool.map(drop, created))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL, checked to be reachable. Not flushed: tests run in
    parallel, so each one keys its data by fresh ids."""
    url = redis_server_url()
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    finally:
        client.close()
    return url
