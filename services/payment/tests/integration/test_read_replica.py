"""Wallet and payment history through a real streaming replica
(switchyard_dev.replication's fixtures), at the gRPC level.

The replica is held back with a long `recovery_min_apply_delay` (released by
setting it to 0 again), so no assertion depends on the machine's speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from payment_service.adapters.unit_of_work import PaymentUnitOfWork
from payment_service.config import PaymentSettings
from payment_service.entrypoints.app import (
    MIGRATIONS_DIR,
    database_from,
    grpc_service,
    reconcile_database,
)
from prometheus_client import REGISTRY
from switchyard.payment.v1 import payment_pb2
from switchyard_dev.replication import ReplicatedPostgres
from switchyard_kit import Database, RunningServer, upgrade_database

from ..conftest import Client, new_user

LONG_DELAY_SECONDS = 30

pytestmark = pytest.mark.replication


@pytest.fixture
def replicated(
    replication: ReplicatedPostgres,
    create_replicated_database: Callable[[str], tuple[str, str]],
) -> Iterator[tuple[Database, Client, str]]:
    """(the service's database, a client of a server on it, the replica's URL)."""
    primary_url, replica_url = create_replicated_database("payment")
    upgrade_database(primary_url, MIGRATIONS_DIR)
    replication.wait_for_replay()
    settings = PaymentSettings(
        port=0,
        database_url=primary_url,
        database_read_url=replica_url,
        replica_max_lag_seconds=LONG_DELAY_SECONDS * 2,
        grace_seconds=1,
    )
    database = database_from(settings)
    server = RunningServer(grpc_service(database, settings), settings)
    server.start()
    client = Client(f"127.0.0.1:{server.port}")
    yield database, client, replica_url
    client.close()
    server.stop()
    database.dispose()


def replica_reads(database: Database) -> float:
    assert database.replica is not None
    labels = {"database": database.replica.label, "served_by": "replica", "reason": "fresh"}
    return REGISTRY.get_sample_value("db_replica_reads_total", labels) or 0.0


def caught_up(replication: ReplicatedPostgres, database: Database) -> None:
    """The replica has replayed everything, and the service's router knows it."""
    replication.wait_for_replay()
    assert database.replica is not None
    deadline = time.monotonic() + 60
    while not database.replica.probe().usable:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def history(client: Client, user: str) -> list[str]:
    response = client.stub.ListPayments(
        payment_pb2.ListPaymentsRequest(page_size=10),
        metadata=client.metadata(user, None),
        timeout=5,
    )
    return [payment.id for payment in response.payments]


def test_wallet_and_history_show_the_users_own_writes_while_the_replica_lags(
    replication: ReplicatedPostgres, replicated: tuple[Database, Client, str]
) -> None:
    database, client, replica_url = replicated
    ada, bob = new_user(), new_user()
    client.top_up(bob, 500)
    caught_up(replication, database)

    replication.set_apply_delay(LONG_DELAY_SECONDS)
    client.top_up(ada, 1_000)
    payment = client.pay(ada, 300)

    # Ada sees her top-up and her payment at once...
    assert client.balances(ada) == {"EUR": 700}
    assert history(client, ada) == [payment.id]
    assert client.get(ada, payment.id).amount == 300
    # ...though the replica has neither yet.
    replica = Database(replica_url)
    with PaymentUnitOfWork(replica) as uow:
        assert uow.payments.wallet_balances(ada) == []
    replica.dispose()
    # Bob, who wrote nothing since, is served by the replica meanwhile.
    served = replica_reads(database)
    assert client.balances(bob) == {"EUR": 500}
    assert replica_reads(database) == served + 1

    replication.set_apply_delay(0)
    caught_up(replication, database)
    served = replica_reads(database)
    assert client.balances(ada) == {"EUR": 700}
    assert history(client, ada) == [payment.id]
    assert replica_reads(database) == served + 2
    assert reconcile_database(database) == []


def test_a_stopped_replica_leaves_wallets_readable_from_the_primary(
    replication: ReplicatedPostgres, replicated: tuple[Database, Client, str]
) -> None:
    database, client, _ = replicated
    ada = new_user()
    client.top_up(ada, 1_000)
    caught_up(replication, database)
    replication.stop_replica()

    assert client.balances(ada) == {"EUR": 1_000}
    assert history(client, ada) == []
    assert database.replica is not None
    assert database.replica.state.state == "down"
    assert database.ping()
