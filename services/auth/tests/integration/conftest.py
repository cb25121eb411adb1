"""A real auth gRPC server on a real database (SQLite file or PostgreSQL),
and a recording stand-in of the profile server (the broker-less event sink and
CreateProfile) in the same process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from auth_service.config import AuthSettings
from auth_service.entrypoints.app import (
    MIGRATIONS_DIR,
    AuthApplication,
    database_from,
    grpc_service,
    handlers_from,
)
from switchyard.auth.v1 import auth_pb2_grpc
from switchyard.events.v1 import events_pb2, events_pb2_grpc
from switchyard.profile.v1 import profile_pb2, profile_pb2_grpc
from switchyard_kit import RunningServer, upgrade_database

KEY_SECRET = "integration-test-key-secret-0123456789abcdef"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auth.db'}"
    create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
    return create("auth")


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """The same databases, migrated to the latest revision."""
    upgrade_database(empty_database_url, MIGRATIONS_DIR)
    return empty_database_url


@dataclass
class RecordingSink(events_pb2_grpc.EventSinkServiceServicer):
    """Records delivered events; answers UNAVAILABLE while `failing`."""

    events: list[events_pb2.Event] = field(default_factory=list)
    failing: bool = False

    def Deliver(  # noqa: N802 - the RPC's name
        self, request: events_pb2.DeliverRequest, context: grpc.ServicerContext
    ) -> events_pb2.DeliverResponse:
        if self.failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "consumer down")
        self.events.extend(request.events)
        return events_pb2.DeliverResponse(accepted=len(request.events))


@dataclass
class RecordingProfiles(profile_pb2_grpc.ProfileServiceServicer):
    """The profile service's CreateProfile: records each request; answers
    UNAVAILABLE while `failing`."""

    created: list[profile_pb2.CreateProfileRequest] = field(default_factory=list)
    failing: bool = False

    def CreateProfile(  # noqa: N802 - the RPC's name
        self, request: profile_pb2.CreateProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.CreateProfileResponse:
        if self.failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "profile down")
        self.created.append(request)
        return profile_pb2.CreateProfileResponse(
            profile=profile_pb2.Profile(user_id=request.user_id)
        )


@pytest.fixture
def profile_server() -> Iterator[tuple[RecordingSink, RecordingProfiles, str]]:
    """A stand-in profile server on a free loopback port, as auth sees it: the
    EventSinkService (the broker-less event path) and CreateProfile, both
    recording; and its target."""
    sink, profiles = RecordingSink(), RecordingProfiles()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    events_pb2_grpc.add_EventSinkServiceServicer_to_server(sink, server)
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(profiles, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield sink, profiles, f"127.0.0.1:{port}"
    server.stop(0).wait()


@pytest.fixture
def event_sink(
    profile_server: tuple[RecordingSink, RecordingProfiles, str],
) -> tuple[RecordingSink, str]:
    """The recording EventSinkService and its target."""
    return profile_server[0], profile_server[2]


@pytest.fixture
def recorded_profiles(
    profile_server: tuple[RecordingSink, RecordingProfiles, str],
) -> RecordingProfiles:
    """The recording CreateProfile (at PROFILE_TARGET)."""
    return profile_server[1]


@dataclass
class AuthServer:
    application: AuthApplication
    running: RunningServer
    channel: grpc.Channel

    @property
    def stub(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self.running.stop()


def auth_settings(database_url: str, **overrides: object) -> AuthSettings:
    values: dict[str, object] = {
        "environment": "development",
        "database_url": database_url,
        "signing_key_secret": KEY_SECRET,
        # Cheap argon2 for tests; production uses the OWASP defaults.
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 64,
        "argon2_parallelism": 1,
        "grace_seconds": 0.5,
        "readiness_interval_seconds": 0.2,
        "max_workers": 8,
        "db_pool_size": 4,
    }
    values.update(overrides)
    settings = AuthSettings(**values)  # type: ignore[arg-type]
    # Port 0 (the OS picks a free port) is set after validation, which would
    # replace it with the default port; RunningServer.port is the bound port.
    return settings.model_copy(update={"port": 0})


@pytest.fixture
def start_auth(
    database_url: str, event_sink: tuple[RecordingSink, str]
) -> Iterator[Callable[..., AuthServer]]:
    """`start_auth(**setting_overrides)`: a started auth server on the test
    database; every one started is stopped at the end."""
    started: list[AuthServer] = []

    def start(**overrides: object) -> AuthServer:
        settings = auth_settings(database_url, **{"profile_target": event_sink[1], **overrides})
        application = handlers_from(database_from(settings), settings)
        running = RunningServer(grpc_service(application), settings)
        running.start()
        server = AuthServer(
            application, running, grpc.insecure_channel(f"127.0.0.1:{running.port}")
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def auth_server(start_auth: Callable[..., AuthServer]) -> AuthServer:
    return start_auth()


@pytest.fixture
def make_settings() -> Callable[..., AuthSettings]:
    """`make_settings(database_url, **overrides)`: the settings the test servers use."""
    return auth_settings
