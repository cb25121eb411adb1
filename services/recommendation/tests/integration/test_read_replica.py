"""Recommendations scored from a real streaming replica (switchyard_dev.replication),
with the buyer's own purchases visible at once while it lags."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY
from recommendation_service.config import RecommendationSettings
from recommendation_service.entrypoints.app import MIGRATIONS_DIR, database_from, grpc_service
from switchyard_dev.replication import ReplicatedPostgres
from switchyard_kit import Database, InProcessCache, RunningServer, upgrade_database

from .events import paid
from .test_grpc import Client, fresh

pytestmark = pytest.mark.replication


@pytest.fixture
def replicated(
    replication: ReplicatedPostgres,
    create_replicated_database: Callable[[str], tuple[str, str]],
) -> Iterator[tuple[Database, Client]]:
    primary_url, replica_url = create_replicated_database("recommendation")
    upgrade_database(primary_url, MIGRATIONS_DIR)
    replication.wait_for_replay()
    settings = RecommendationSettings(
        port=0,
        database_url=primary_url,
        database_read_url=replica_url,
        replica_max_lag_seconds=60,
        grace_seconds=1,
    )
    database = database_from(settings)
    server = RunningServer(grpc_service(database, settings, cache=InProcessCache("rec")), settings)
    server.start()
    client = Client(f"127.0.0.1:{server.port}")
    yield database, client
    client.channel.close()
    server.stop()
    database.dispose()


def replica_reads(database: Database) -> float:
    assert database.replica is not None
    labels = {"database": database.replica.label, "served_by": "replica", "reason": "fresh"}
    return REGISTRY.get_sample_value("db_replica_reads_total", labels) or 0.0


def test_a_buyer_is_scored_on_their_own_purchase_while_the_replica_lags(
    replication: ReplicatedPostgres, replicated: tuple[Database, Client]
) -> None:
    database, client = replicated
    tea, cups, kettle = fresh("tea"), fresh("cups"), fresh("kettle")
    alice, bob, carol, dave = fresh("alice"), fresh("bob"), fresh("carol"), fresh("dave")
    client.deliver(
        paid(alice, {tea: 1, cups: 2, kettle: 1}),
        paid(bob, {tea: 1, cups: 1, kettle: 1}),
        paid(dave, {tea: 1, cups: 1, kettle: 1}),
    )
    replication.wait_for_replay()
    assert database.replica is not None
    deadline = time.monotonic() + 60
    while not database.replica.probe().usable:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    replication.set_apply_delay(30)
    client.deliver(paid(carol, {tea: 1}))
    # Carol's list comes from her purchase (the primary), not the replica's
    # older model where she has bought nothing (which would be the popular list).
    mine = client.get(carol)
    assert {sku for sku, _ in mine[:2]} == {cups, kettle}
    assert {source for _, source in mine[:2]} == {"personal"}
    # A newcomer's list is scored on the replica.
    served = replica_reads(database)
    assert {sku for sku, _ in client.get(fresh("newcomer"))} == {tea, cups, kettle}
    assert replica_reads(database) == served + 1
