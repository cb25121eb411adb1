"""switchyard_kit.retention on real PostgreSQL and Redis: past retention goes,
within stays, a second run deletes nothing, one run never passes its bound."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
from switchyard_kit import Database
from switchyard_kit.events import dead_letter_stream_name
from switchyard_kit.retention import (
    RetentionBound,
    delete_in_batches,
    trim_dead_letters,
    trim_stream_before,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
metadata = sa.MetaData()
parents = sa.Table(
    "parents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
children = sa.Table(
    "children",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
)


@pytest.fixture
def database(create_postgres_database) -> Iterator[Database]:
    db = Database(create_postgres_database("retention"))
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def _rows(database: Database, table: sa.Table) -> list[int]:
    with database.session() as session:
        return sorted(session.execute(sa.select(table.c.id)).scalars())


def test_delete_in_batches_on_postgresql(database: Database) -> None:
    with database.session() as session, session.begin():
        session.execute(
            sa.insert(parents),
            [{"id": i, "at": NOW - timedelta(days=i)} for i in range(1, 31)],
        )
        session.execute(sa.insert(children), [{"id": i, "parent_id": i} for i in range(1, 31)])
    old = parents.c.at < NOW - timedelta(days=10)  # ids 11..30
    bound = RetentionBound(batch_size=3, max_rows=8)
    deleted = [
        delete_in_batches(database, parents, old, bound, dependents=[children.c.parent_id])
        for _ in range(4)
    ]
    assert deleted == [8, 8, 4, 0]
    assert _rows(database, parents) == list(range(1, 11))
    # The child rows went first, in the same transactions (the foreign key held).
    assert _rows(database, children) == list(range(1, 11))


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def _add(client: redis.Redis, stream: str, at: datetime, count: int) -> None:
    ms = int(at.timestamp() * 1000)
    for sequence in range(count):
        client.xadd(stream, {"event": b"x"}, id=f"{ms}-{sequence}")


def test_trim_stream_before_is_exact_and_bounded(client: redis.Redis) -> None:
    stream = f"test.{uuid.uuid4().hex}"
    cutoff = NOW - timedelta(days=30)
    _add(client, stream, cutoff - timedelta(days=5), 4)
    _add(client, stream, cutoff - timedelta(milliseconds=1), 3)
    _add(client, stream, cutoff, 2)  # exactly at the cutoff: kept
    _add(client, stream, NOW, 1)
    bound = RetentionBound(batch_size=2, max_rows=5)
    try:
        assert trim_stream_before(client, stream, cutoff, bound) == 5
        assert trim_stream_before(client, stream, cutoff, bound) == 2
        assert trim_stream_before(client, stream, cutoff, bound) == 0
        kept = [entry_id for entry_id, _ in client.xrange(stream)]
        assert len(kept) == 3
        assert all(int(entry_id.split(b"-")[0]) >= cutoff.timestamp() * 1000 for entry_id in kept)
    finally:
        client.delete(stream)


def test_trim_dead_letters_finds_the_group_s_dead_letter_stream(
    client: redis.Redis, redis_url: str
) -> None:
    logical, group = f"test-{uuid.uuid4().hex[:8]}", "consumers"
    stream = dead_letter_stream_name(logical, group)
    _add(client, stream, NOW - timedelta(days=31), 2)
    _add(client, stream, NOW - timedelta(days=29), 1)
    try:
        trim = lambda: trim_dead_letters(  # noqa: E731
            redis_url, logical, group, retention_days=30, bound=RetentionBound(), clock=lambda: NOW
        )
        assert trim() == 2
        assert trim() == 0
        assert client.xlen(stream) == 1
    finally:
        client.delete(stream)
