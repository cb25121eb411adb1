from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import StatementError
from switchyard_kit import Database, UtcDateTime


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/example.db"
    create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
    return create("kit")


def test_a_database_answers_and_commits(database_url: str) -> None:
    database = Database(database_url)
    assert database.ping()
    with database.session() as session, session.begin():
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
    with database.read_session() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    database.dispose()


def test_an_unreachable_database_pings_false_quickly() -> None:
    database = Database("postgresql+psycopg2://postgres@127.0.0.1:1/none")
    assert database.ping() is False
    database.dispose()


def test_utc_datetime_round_trips_as_aware_utc(database_url: str) -> None:
    # One column type for every service's timestamps: whatever zone is written,
    # the same instant comes back in UTC, SQLite included (it keeps no zone).
    metadata = MetaData()
    stamps = Table(
        "stamps",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", UtcDateTime(), nullable=True),
    )
    database = Database(database_url)
    metadata.create_all(database.engine)
    written = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with database.session() as session, session.begin():
        session.execute(insert(stamps), [{"id": 1, "at": written}, {"id": 2, "at": None}])
    with database.session() as session:
        rows = {row.id: row.at for row in session.execute(select(stamps.c.id, stamps.c.at))}
    assert rows[1] == written
    assert rows[1].tzinfo is UTC
    assert rows[1].hour == 20  # 01:30 at +05:30 is 20:00 UTC the day before
    assert rows[2] is None
    database.dispose()


def test_utc_datetime_refuses_a_naive_datetime(database_url: str) -> None:
    metadata = MetaData()
    stamps = Table("naive_stamps", metadata, Column("at", UtcDateTime()))
    database = Database(database_url)
    metadata.create_all(database.engine)
    with (
        database.session() as session,
        pytest.raises(StatementError, match="naive datetime"),
    ):
        session.execute(insert(stamps).values(at=datetime(2026, 1, 1)))
    database.dispose()


def test_utc_datetime_keeps_the_timestamptz_schema() -> None:
    # Swapping DateTime(timezone=True) for UtcDateTime needs no migration.
    ddl = str(UtcDateTime().compile(dialect=postgresql.dialect()))
    assert ddl == str(DateTime(timezone=True).compile(dialect=postgresql.dialect()))
    assert ddl == "TIMESTAMP WITH TIME ZONE"
