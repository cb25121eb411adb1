"""Reads through a real streaming replica (switchyard_dev.replication's fixtures),
end to end at the gRPC level.

The replica is made to lag with `recovery_min_apply_delay`. The profile cache
is kept to a millisecond so every read below reaches the database and its
routing can be seen on the kit's metrics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc
from profile_service.entrypoints.app import MIGRATIONS_DIR
from prometheus_client import REGISTRY
from switchyard.profile.v1 import profile_pb2
from switchyard_dev.replication import ReplicatedPostgres
from switchyard_kit import upgrade_database
from switchyard_kit._replica import ReplicaState

from .conftest import Server

APPLY_DELAY_SECONDS = 3


@pytest.fixture
def replicated_server(
    replication: ReplicatedPostgres,
    create_replicated_database: Callable[[str], tuple[str, str]],
    start_server: Callable[..., Server],
) -> Server:
    primary_url, replica_url = create_replicated_database("profile")
    server = start_server(
        primary_url,
        database_read_url=replica_url,
        replica_max_lag_seconds=60,
        cache_ttl_seconds=0.001,
    )
    replication.wait_for_replay()  # the migrations
    wait_for(server, "usable")
    return server


def wait_for(server: Server, wanted: str, timeout_seconds: float = 60) -> ReplicaState:
    router = server.database.replica
    assert router is not None
    deadline = time.monotonic() + timeout_seconds
    while (state := router.state).state != wanted:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def reads(server: Server, served_by: str, reason: str) -> float:
    assert server.database.replica is not None
    labels = {"database": server.database.replica.label, "served_by": served_by, "reason": reason}
    return REGISTRY.get_sample_value("db_replica_reads_total", labels) or 0.0


def create(server: Server, display_name: str) -> str:
    user_id = str(uuid.uuid4())
    server.stub.CreateProfile(
        profile_pb2.CreateProfileRequest(user_id=user_id, display_name=display_name), timeout=10
    )
    return user_id


def rename(server: Server, user_id: str, display_name: str) -> None:
    server.stub.UpdateMyProfile(
        profile_pb2.UpdateMyProfileRequest(
            profile=profile_pb2.Profile(display_name=display_name),
            update_mask=FieldMask(paths=["display_name"]),
        ),
        metadata=server.caller(user_id),
        timeout=10,
    )


def my_name(server: Server, user_id: str) -> str:
    return server.stub.GetMyProfile(
        profile_pb2.GetMyProfileRequest(), metadata=server.caller(user_id), timeout=10
    ).profile.display_name


def public_name(server: Server, viewer: str, user_id: str) -> str:
    return server.stub.GetPublicProfile(
        profile_pb2.GetPublicProfileRequest(user_id=user_id),
        metadata=server.caller(viewer),
        timeout=10,
    ).profile.display_name


@pytest.mark.replication
def test_update_then_get_shows_the_change_while_the_replica_lags(
    replication: ReplicatedPostgres, replicated_server: Server
) -> None:
    server = replicated_server
    ada, bob = create(server, "Ada"), create(server, "Bob")
    replication.wait_for_replay()
    server.database.replica.probe()  # type: ignore[union-attr] # (not wait up to 0.5 s)
    assert public_name(server, bob, bob) == "Bob"
    replication.set_apply_delay(APPLY_DELAY_SECONDS)

    replica_reads = reads(server, "replica", "fresh")
    held_back = reads(server, "primary", "not_yet_replayed")
    rename(server, ada, "Ada Lovelace")
    renamed_at = time.monotonic()
    # Ada's next read shows her change (the primary served it: the replica has not replayed it).
    assert my_name(server, ada) == "Ada Lovelace"
    assert reads(server, "primary", "not_yet_replayed") == held_back + 1
    # Bob's own profile, which nobody changed, is read from the replica meanwhile.
    assert public_name(server, ada, bob) == "Bob"
    assert reads(server, "replica", "fresh") == replica_reads + 1

    # Read until the replica serves Ada's profile: every answer shows the change.
    seen: set[str] = set()
    max_lag = 0.0
    while reads(server, "replica", "fresh") == replica_reads + 1:
        assert time.monotonic() - renamed_at < 60, "the replica never caught up"
        seen.add(my_name(server, ada))
        seen.add(public_name(server, bob, ada))
        max_lag = max(max_lag, wait_for(server, "usable").lag_seconds or 0.0)
        time.sleep(0.05)
    assert seen == {"Ada Lovelace"}
    print(  # the numbers of the closing note, shown with pytest -s
        f"\napply delay {APPLY_DELAY_SECONDS} s: replica lag seen up to {max_lag:.2f} s; "
        f"{int(reads(server, 'primary', 'not_yet_replayed') - held_back)} reads of Ada's "
        f"profile went to the primary, the replica served her after "
        f"{time.monotonic() - renamed_at:.2f} s; the client saw the new name in every answer"
    )


@pytest.mark.replication
def test_a_stopped_replica_leaves_the_service_ready_and_serving(
    replication: ReplicatedPostgres, replicated_server: Server
) -> None:
    server = replicated_server
    ada = create(server, "Ada")
    replication.wait_for_replay()
    server.database.replica.probe()  # type: ignore[union-attr]
    replication.stop_replica()
    fell_back = reads(server, "primary", "replica_down")
    unsure = reads(server, "primary", "unknown")

    # The first read finds the replica gone by itself (or, on a loaded machine,
    # finds the last probe too old to trust: "unknown"); then the probe agrees.
    assert public_name(server, ada, ada) == "Ada"
    wait_for(server, "down")
    first = reads(server, "primary", "replica_down") + reads(server, "primary", "unknown")
    assert first >= fell_back + unsure + 1
    assert my_name(server, ada) == "Ada"
    assert reads(server, "primary", "replica_down") >= fell_back + 1
    health = health_pb2_grpc.HealthStub(server.channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_a_sqlite_read_url_is_read_unrouted_as_before(
    start_server: Callable[..., Server], tmp_path: Path, user_id: str
) -> None:
    # Two SQLite files stand in for a primary and a replica that never catches up:
    # no WAL positions to compare, so reads go to the read URL as they always did.
    replica_url = f"sqlite:///{tmp_path}/replica.db"
    upgrade_database(replica_url, MIGRATIONS_DIR)
    server = start_server(f"sqlite:///{tmp_path}/primary.db", database_read_url=replica_url)

    server.stub.CreateProfile(
        profile_pb2.CreateProfileRequest(user_id=user_id, display_name="Ada"), timeout=10
    )
    # The replica has not caught up: a public read does not see the profile yet...
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.GetPublicProfile(
            profile_pb2.GetPublicProfileRequest(user_id=user_id), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # ...and the owner's read falls back to creating it on the primary, which
    # finds the existing profile instead of making a second one.
    mine = server.stub.GetMyProfile(
        profile_pb2.GetMyProfileRequest(), metadata=server.caller(user_id), timeout=10
    ).profile
    assert mine.display_name == "Ada"
