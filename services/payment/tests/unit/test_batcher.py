"""The write batcher on its own: which writes join, and what each dialect is sent."""

from __future__ import annotations

from typing import Any

import pytest
from payment_service.adapters.batcher import WriteBatch, WriteTarget, insert_target, together
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.dialects import postgresql

metadata = MetaData()
parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
children = Table(
    "children",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer),
    Column("name", String(10)),
)
PARENTS = insert_target(parents, skip_existing=True)
CHILDREN = insert_target(children)


class FakeConnection:
    """Records what would be executed instead of executing it."""

    def __init__(self) -> None:
        self.executed: list[tuple[Any, Any]] = []

    def execute(self, statement: Any, parameters: Any) -> None:
        self.executed.append((statement, parameters))


def _sql(statement: Any) -> str:
    return " ".join(str(statement.compile(dialect=postgresql.dialect())).split())


def test_consecutive_rows_of_one_target_and_columns_join_one_write():
    batch = WriteBatch("sqlite")
    batch.add(PARENTS, {"id": 1})
    batch.add(PARENTS, {"id": 2}, {"id": 3})
    batch.add(CHILDREN, {"id": 1, "parent_id": 1, "name": "a"})
    batch.add(CHILDREN, {"id": 2, "parent_id": 1})  # other columns: a write of its own
    batch.add(PARENTS, {"id": 4})  # after another target: its own write too
    connection = FakeConnection()
    batch.flush(connection)  # type: ignore[arg-type]
    assert [(statement, len(rows)) for statement, rows in connection.executed] == [
        (PARENTS.alone["sqlite"], 3),
        (CHILDREN.alone["sqlite"], 1),
        (CHILDREN.alone["sqlite"], 1),
        (PARENTS.alone["sqlite"], 1),
    ]


def test_a_flush_empties_the_batch():
    batch = WriteBatch("postgresql")
    assert not batch
    batch.add(PARENTS, {"id": 1})
    assert batch
    connection = FakeConnection()
    batch.flush(connection)  # type: ignore[arg-type]
    batch.flush(connection)  # type: ignore[arg-type]
    assert not batch
    assert len(connection.executed) == 1


def test_one_write_on_postgresql_goes_alone():
    batch = WriteBatch("postgresql")
    batch.add(PARENTS, {"id": 1}, {"id": 2})
    connection = FakeConnection()
    batch.flush(connection)  # type: ignore[arg-type]
    assert connection.executed == [(PARENTS.alone["postgresql"], [{"id": 1}, {"id": 2}])]


def test_several_writes_on_postgresql_are_one_statement_of_ctes():
    batch = WriteBatch("postgresql")
    batch.add(PARENTS, {"id": 1})
    batch.add(
        CHILDREN, {"id": 1, "parent_id": 1, "name": "a"}, {"id": 2, "parent_id": 1, "name": "b"}
    )
    connection = FakeConnection()
    batch.flush(connection)  # type: ignore[arg-type]
    [(statement, parameters)] = connection.executed
    assert _sql(statement) == (
        "WITH w0 AS (INSERT INTO parents (id) VALUES (%(w0_id)s::INTEGER)"
        " ON CONFLICT DO NOTHING)"
        " INSERT INTO children (id, parent_id, name)"
        " SELECT rows.id, rows.parent_id, rows.name"
        " FROM unnest(%(w1_id)s::INTEGER[], %(w1_parent_id)s::INTEGER[],"
        " %(w1_name)s::VARCHAR(10)[]) AS rows(id, parent_id, name)"
    )
    # One row: values; several rows: one array per column.
    assert parameters == {
        "w0_id": 1,
        "w1_id": [1, 2],
        "w1_parent_id": [1, 1],
        "w1_name": ["a", "b"],
    }


def test_a_shape_is_built_once():
    """Same targets, columns and one-or-many: the same statement object, so
    SQLAlchemy's compiled cache finds it without recomputing its key."""
    shape = ((PARENTS, ("id",), False), (CHILDREN, ("id", "parent_id"), True))
    assert together(shape) is together(shape)
    assert together(shape) is not together(((PARENTS, ("id",), True), *shape[1:]))


def test_a_write_that_cannot_take_several_rows_says_so():
    def one_row_only(prefix: str, columns: tuple[str, ...], many: bool) -> Any:
        if many:
            raise ValueError("one row only")
        return PARENTS.part(prefix, columns, many)

    single = WriteTarget(PARENTS.alone, one_row_only)
    with pytest.raises(ValueError, match="one row only"):
        together(((PARENTS, ("id",), False), (single, ("id",), True)))
