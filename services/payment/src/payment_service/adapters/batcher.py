"""Writes held back and sent together: on PostgreSQL one statement, each write a
data-modifying CTE; on SQLite one executemany per write.

A transaction's writes that nobody reads before the next statement or the
commit (payment, items, ledger rows, outbox event...) cost one round trip
instead of one per table. Knows tables and rows, nothing of payments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, UpdateBase, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

Row = dict[str, Any]


@dataclass(frozen=True, eq=False)
class WriteTarget:
    """Where a held-back write goes. `alone[dialect]` takes its rows by column
    name (an executemany); `part(prefix, columns, many)` is the same write as one
    piece of the single PostgreSQL statement that sends all held-back writes,
    with one parameter `<prefix><column>` per column: a value, or with `many` an
    array of them (one element per row).

    Targets are compared by identity (`eq=False`): build each once, at import,
    so the statements built from it are cached once."""

    alone: Mapping[str, UpdateBase]
    part: Callable[[str, tuple[str, ...], bool], UpdateBase]


def insert_target(table: Table, *, skip_existing: bool = False) -> WriteTarget:
    """Inserts into `table`; with `skip_existing`, a row that is there already
    (by any of the table's unique keys) is left alone.

    Any unique key, not only the primary key: PostgreSQL turns a conflict into
    "do nothing" only on the keys named in ON CONFLICT, and when two
    transactions insert the same row at once the loser may meet the winner's
    row in another unique index first (an account's (kind, owner, currency))
    and fail with a unique violation. So `skip_existing` is for tables whose
    unique keys all name the same row."""
    into_postgresql, into_sqlite = postgresql.insert(table), sqlite.insert(table)
    if skip_existing:
        into_postgresql = into_postgresql.on_conflict_do_nothing()
        into_sqlite = into_sqlite.on_conflict_do_nothing()

    def part(prefix: str, columns: tuple[str, ...], many: bool) -> UpdateBase:
        if not many:
            return into_postgresql.values({name: bindparam(prefix + name) for name in columns})
        # Several rows: unnest(array, array, ...), one array per column. (A
        # multi-row VALUES would not be cached by SQLAlchemy, nor be one shape.)
        arrays = (
            func.unnest(
                *(bindparam(prefix + name, type_=ARRAY(table.c[name].type)) for name in columns)
            )
            .table_valued(*columns)
            .render_derived(name="rows")
        )
        return into_postgresql.from_select(list(columns), select(arrays))

    return WriteTarget({"postgresql": into_postgresql, "sqlite": into_sqlite}, part)


Shape = tuple[tuple[WriteTarget, tuple[str, ...], bool], ...]


@functools.lru_cache(maxsize=64)
def together(shape: Shape) -> UpdateBase:
    """One PostgreSQL statement for held-back writes of this shape (which
    targets, which columns, one row or several): each write but the last a
    data-modifying CTE. Built once per shape, so SQLAlchemy computes its cache
    key once and compiles it once."""
    parts = [
        target.part(f"w{index}_", columns, many)
        for index, (target, columns, many) in enumerate(shape)
    ]
    *ctes, last = parts
    return last.add_cte(*(part.cte(f"w{index}") for index, part in enumerate(ctes)))


class WriteBatch:
    """Writes held back until `flush`, in the order they were added."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._pending: list[tuple[WriteTarget, list[Row]]] = []

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, target: WriteTarget, *rows: Row) -> None:
        """Hold back rows for `target`; rows with the same columns as the
        previous write's, to the same target, join it (one executemany, one
        `unnest`)."""
        last = self._pending[-1] if self._pending else None
        if last is not None and last[0] is target and last[1][0].keys() == rows[0].keys():
            last[1].extend(rows)
        else:
            self._pending.append((target, list(rows)))

    def flush(self, connection: Connection) -> None:
        """Send the held-back writes, in order: on SQLite one executemany per
        write; on PostgreSQL one statement, each write a data-modifying CTE.
        That is safe only for writes that insert or update rows no other part
        of the batch touches (no row is modified twice in a statement), that do
        not read what another part writes (they all see one snapshot), and whose
        foreign keys are not deferred past the statement: PostgreSQL checks them
        at its end, after every part, so a child may come before its parent."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        if self.dialect != "postgresql" or len(pending) == 1:
            for target, rows in pending:
                connection.execute(target.alone[self.dialect], rows)
            return
        shape = tuple((target, tuple(rows[0]), len(rows) > 1) for target, rows in pending)
        parameters: Row = {}
        for index, (_, rows) in enumerate(pending):
            if len(rows) == 1:
                parameters.update((f"w{index}_{name}", value) for name, value in rows[0].items())
            else:
                parameters.update(
                    (f"w{index}_{name}", [row[name] for row in rows]) for name in rows[0]
                )
        connection.execute(together(shape), parameters)
