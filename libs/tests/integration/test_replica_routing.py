"""Read routing to a real streaming replica (switchyard_dev.replication's fixtures).

The replica is made to lag with `recovery_min_apply_delay`: WAL still
streams in, but commits are applied that much later, so a read straight from
the replica shows the old value while the router's reads show the new one.
The delays are long (tens of seconds) and released by setting the delay back
to 0, so no assertion depends on how fast a busy machine runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from switchyard_dev.replication import ReplicatedPostgres
from switchyard_kit import Database, SqlAlchemyUnitOfWork
from switchyard_kit._metrics import database_label
from switchyard_kit._replica import ReplicaState

LONG_DELAY_SECONDS = 30

pytestmark = pytest.mark.replication
ALICE = "0b1f5c2e-0000-4000-8000-00000000000a"
BOB = "0b1f5c2e-0000-4000-8000-00000000000b"


@pytest.fixture
def urls(
    replication: ReplicatedPostgres, create_replicated_database: Callable[[str], tuple[str, str]]
) -> tuple[str, str]:
    primary_url, replica_url = create_replicated_database("replica")
    engine = create_engine(primary_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE notes (user_id TEXT PRIMARY KEY, body TEXT)"))
        connection.execute(
            text("INSERT INTO notes VALUES (:alice, 'old'), (:bob, 'old')"),
            {"alice": ALICE, "bob": BOB},
        )
    engine.dispose()
    replication.wait_for_replay()
    return primary_url, replica_url


@pytest.fixture
def make_database(urls: tuple[str, str]) -> Iterator[Callable[..., Database]]:
    made: list[Database] = []

    def make(**options: float) -> Database:
        database = Database(urls[0], urls[1], **options)  # type: ignore[arg-type]
        made.append(database)
        return database

    yield make
    for database in made:
        database.dispose()


def served_by_replica(session: Session) -> bool:
    return bool(session.execute(text("SELECT pg_is_in_recovery()")).scalar_one())


def body_of(session: Session, user_id: str) -> str:
    return str(
        session.execute(
            text("SELECT body FROM notes WHERE user_id = :user_id"), {"user_id": user_id}
        ).scalar_one()
    )


def write(database: Database, user_id: str, body: str) -> None:
    with SqlAlchemyUnitOfWork(database, for_user=user_id) as uow:
        uow.session.execute(
            text("UPDATE notes SET body = :body WHERE user_id = :user_id"),
            {"body": body, "user_id": user_id},
        )
        uow.commit()


def read(database: Database, user_id: str) -> tuple[str, bool]:
    """(the body, whether the replica served it), through a read-only unit of work."""
    with SqlAlchemyUnitOfWork(database, read_only=True, for_user=user_id) as uow:
        return body_of(uow.session, user_id), served_by_replica(uow.session)


def probe_until(database: Database, wanted: str, timeout_seconds: float = 60) -> ReplicaState:
    assert database.replica is not None
    deadline = time.monotonic() + timeout_seconds
    while True:
        state = database.replica.probe()
        if state.state == wanted or time.monotonic() > deadline:
            assert state.state == wanted, state
            return state
        time.sleep(0.1)


def reads_counted(database: Database, served_by: str, reason: str) -> float:
    assert database.replica is not None
    value = REGISTRY.get_sample_value(
        "db_replica_reads_total",
        {"database": database.replica.label, "served_by": served_by, "reason": reason},
    )
    return value or 0.0


def test_a_user_reads_their_own_write_while_the_replica_lags(
    replication: ReplicatedPostgres, make_database: Callable[..., Database], urls: tuple[str, str]
) -> None:
    database = make_database(max_replica_lag_seconds=LONG_DELAY_SECONDS * 2)
    probe_until(database, "usable")
    assert read(database, ALICE) == ("old", True)

    replication.set_apply_delay(LONG_DELAY_SECONDS)
    write(database, ALICE, "new")
    database.replica.probe()  # type: ignore[union-attr]

    # Alice sees her write (the primary served it)...
    assert read(database, ALICE) == ("new", False)
    # ...while the replica really is behind: read straight from it, the old value.
    replica = create_engine(urls[1])
    with Session(replica) as session:
        assert body_of(session, ALICE) == "old"
    # Bob has written nothing: his reads stay on the replica.
    assert read(database, BOB) == ("old", True)
    lag = probe_until(database, "usable").lag_seconds
    assert lag is not None
    assert lag > 0

    replication.set_apply_delay(0)  # let it replay
    replication.wait_for_replay()
    probe_until(database, "usable")
    # Replayed: Alice's reads go back to the replica, which now has her write.
    assert read(database, ALICE) == ("new", True)
    replica.dispose()


@pytest.mark.redis
def test_another_pod_sees_the_write_mark_through_redis(
    replication: ReplicatedPostgres, urls: tuple[str, str], redis_url: str
) -> None:
    from switchyard_kit import RedisCache  # noqa: PLC0415 - Redis only here

    # Two pods of one service: the write goes through one, the read through the other.
    marks = RedisCache(f"replica-test-{time.time_ns()}", redis_url)
    writer = Database(urls[0], urls[1], max_replica_lag_seconds=120, write_marks=marks)
    reader = Database(urls[0], urls[1], max_replica_lag_seconds=120, write_marks=marks)
    try:
        probe_until(reader, "usable")
        replication.set_apply_delay(LONG_DELAY_SECONDS)
        write(writer, ALICE, "from the other pod")
        probe_until(reader, "usable")
        assert read(reader, ALICE) == ("from the other pod", False)
        assert read(reader, BOB) == ("old", True)
    finally:
        writer.dispose()
        reader.dispose()


def test_a_stopped_replica_sends_reads_to_the_primary_and_readiness_stays_green(
    replication: ReplicatedPostgres,
    make_database: Callable[..., Database],
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = make_database()
    probe_until(database, "usable")
    before = reads_counted(database, "primary", "replica_down")

    replication.stop_replica()
    with caplog.at_level(logging.INFO, logger="switchyard.db.replica"):
        # The first read after the crash finds it down on its own (no probe yet).
        assert read(database, BOB) == ("old", False)
        probe_until(database, "down")
        assert read(database, ALICE) == ("old", False)
    assert database.ping() is True
    assert reads_counted(database, "primary", "replica_down") >= before + 1
    changes = [r for r in caplog.records if r.getMessage().startswith("replica not usable")]
    assert len(changes) == 1, "one log line per state change, not per read"
    assert (
        REGISTRY.get_sample_value("db_replica_usable", {"database": database_label(database.url)})
        == 0
    )

    replication.start_replica()
    probe_until(database, "usable")
    assert read(database, BOB) == ("old", True)


def test_a_replica_lagging_past_the_bound_sends_reads_to_the_primary(
    replication: ReplicatedPostgres, make_database: Callable[..., Database]
) -> None:
    database = make_database(max_replica_lag_seconds=1.0)
    probe_until(database, "usable")
    replication.set_apply_delay(LONG_DELAY_SECONDS)
    write(database, ALICE, "new")

    state = probe_until(database, "lagging")
    assert state.lag_seconds is not None
    assert state.lag_seconds > 1.0
    before = reads_counted(database, "primary", "replica_lagging")
    # Bob wrote nothing, yet his read leaves the lagging replica.
    assert read(database, BOB) == ("old", False)
    assert reads_counted(database, "primary", "replica_lagging") == before + 1

    replication.set_apply_delay(0)
    probe_until(database, "usable")
    assert read(database, BOB) == ("old", True)


def test_an_idle_primary_is_not_lag(
    replication: ReplicatedPostgres, make_database: Callable[..., Database]
) -> None:
    # now() - pg_last_xact_replay_timestamp() would grow past the bound here:
    # the last transaction is older than it, yet there is nothing to replay.
    database = make_database(max_replica_lag_seconds=0.5)
    probe_until(database, "usable")
    time.sleep(1.0)
    state = probe_until(database, "usable")
    assert state.lag_seconds == 0.0
    assert read(database, BOB) == ("old", True)


def test_sqlite_reads_are_not_routed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db")
    assert database.replica is None
    database.remember_write(ALICE)  # nothing to remember without a routed replica
    with database.read_session(after_writes_of=ALICE) as session:
        assert session.get_bind() is database.read_engine
    database.dispose()


def test_a_write_whose_position_is_unreadable_keeps_its_reads_on_the_primary(
    replication: ReplicatedPostgres, make_database: Callable[..., Database]
) -> None:
    database = make_database()
    probe_until(database, "usable")
    assert database.replica is not None
    # The commit went through but the position query cannot run (the primary
    # pool is gone): the write still succeeds, and the key reads the primary.
    primary = database.replica.primary
    database.replica.primary = create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/none")
    try:
        write(database, ALICE, "new")
    finally:
        database.replica.primary.dispose()
        database.replica.primary = primary
    assert read(database, ALICE) == ("new", False)
    assert read(database, BOB) == ("old", True)
