"""A real profile server on a real port, over PostgreSQL and SQLite.

`database_url` is parametrized: every test that uses it runs on a fresh
SQLite file and on a fresh PostgreSQL database. `start_server` migrates the
database and starts the service exactly as `serve` wires it (RunningServer).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import grpc
import pytest
from profile_service.config import ProfileSettings
from profile_service.entrypoints.app import MIGRATIONS_DIR, database_from, grpc_service
from sqlalchemy import create_engine, text
from switchyard.profile.v1 import profile_pb2_grpc
from switchyard_kit import USER_ID_KEY, RunningServer, upgrade_database


class EphemeralPortSettings(ProfileSettings):
    """ProfileSettings whose port 0 means "any free port" (not the default 50052)."""

    default_port: ClassVar[int] = 0


class Server:
    """A started profile server, a channel to it, and direct access to its database."""

    def __init__(self, database_url: str, redis_url: str | None, **settings: Any) -> None:
        self.database_url = database_url
        self.settings = EphemeralPortSettings(
            host="127.0.0.1",
            port=0,
            database_url=database_url,
            readiness_interval_seconds=0.2,
            grace_seconds=1,
            REDIS_URL=redis_url,
            **settings,
        )
        upgrade_database(self.settings.database_url, MIGRATIONS_DIR)
        self.database = database_from(self.settings)
        self.running = RunningServer(grpc_service(self.database, self.settings), self.settings)
        self.running.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.running.port}")
        self.stub = profile_pb2_grpc.ProfileServiceStub(self.channel)

    @staticmethod
    def caller(user_id: str) -> tuple[tuple[str, str], ...]:
        return ((USER_ID_KEY, user_id),)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.channel.close()
        self.running.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/profile.db"
    create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
    return create("profile")


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(database_url: str, redis_url: str | None = None, **settings: Any) -> Server:
        server = Server(database_url, redis_url, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., Server], database_url: str) -> Server:
    """The service with its embedded default: an in-process cache."""
    return start_server(database_url)


@pytest.fixture
def user_id() -> str:
    return str(uuid.uuid4())
