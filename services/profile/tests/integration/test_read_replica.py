"""Reads go to the read database; writes and the lazy-creation fallback to the primary.

Two SQLite files stand in for a primary and a replica that lags behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from profile_service.entrypoints.app import MIGRATIONS_DIR
from switchyard.profile.v1 import profile_pb2
from switchyard_kit import upgrade_database

from .conftest import Server


def test_reads_use_the_replica_and_a_lagging_one_is_harmless(
    start_server: Callable[..., Server], tmp_path: Path, user_id: str
) -> None:
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
