"""The write batcher against the real databases: what arrives, in how many
statements, and when foreign keys are checked."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from payment_service.adapters import tables as t
from payment_service.adapters.batcher import WriteBatch, insert_target
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ACCOUNTS = insert_target(t.accounts, skip_existing=True)
BALANCES = insert_target(t.balances, skip_existing=True)


def _account(account_id: str) -> dict[str, object]:
    return {
        "id": account_id,
        "kind": "wallet",
        "owner": "u1",
        "currency": account_id[-3:],
        "created_at": NOW,
    }


def _balance(account_id: str, amount: int) -> dict[str, object]:
    return {"account_id": account_id, "amount": amount, "updated_at": NOW}


def _flush(database, batch: WriteBatch) -> list[str]:
    """Flush in a committed transaction; the statements sent."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.engine.begin() as connection:
            batch.flush(connection)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    return statements


def test_writes_arrive_in_one_statement_on_postgresql_one_per_write_on_sqlite(database, backend):
    batch = WriteBatch(database.engine.dialect.name)
    batch.add(ACCOUNTS, _account("a-EUR"), _account("a-USD"))
    batch.add(BALANCES, _balance("a-EUR", 5), _balance("a-USD", 7))
    batch.add(ACCOUNTS, _account("a-EUR"))  # there already: skipped, not an error
    statements = _flush(database, batch)
    assert len(statements) == {"postgres": 1, "sqlite": 3}[backend], statements
    with database.engine.connect() as connection:
        amounts = connection.execute(
            select(t.balances.c.account_id, t.balances.c.amount).order_by(t.balances.c.account_id)
        ).all()
        accounts = connection.execute(select(func.count()).select_from(t.accounts)).scalar()
    assert [tuple(row) for row in amounts] == [("a-EUR", 5), ("a-USD", 7)]
    assert accounts == 2


@pytest.mark.backends("postgres")
def test_foreign_keys_are_checked_at_the_end_of_the_one_statement(database, backend):
    """A row may come before the row it refers to, within one flush; a row
    whose parent is in no part of it still fails, and nothing is kept."""
    batch = WriteBatch("postgresql")
    batch.add(BALANCES, _balance("b-EUR", 1))
    batch.add(ACCOUNTS, _account("b-EUR"))
    assert len(_flush(database, batch)) == 1

    orphan = WriteBatch("postgresql")
    orphan.add(ACCOUNTS, _account("c-EUR"))
    orphan.add(BALANCES, _balance("nobody-EUR", 1))
    with pytest.raises(IntegrityError):
        _flush(database, orphan)
    with database.engine.connect() as connection:
        kept = connection.execute(select(t.accounts.c.id).order_by(t.accounts.c.id)).scalars()
        assert list(kept) == ["b-EUR"]


@pytest.mark.backends("postgres")
def test_a_row_inserted_by_two_transactions_at_once_is_skipped_not_an_error(database, backend):
    """Eight transactions insert the same new account at the same instant, round
    after round, as the first payments to a new merchant do. The account's id
    and its (kind, owner, currency) are both unique: whichever one a loser's
    insert meets first, the row is skipped, never a unique violation."""
    sessions = 8
    rounds = 300
    start = threading.Barrier(sessions)

    def insert_each_round(_: int) -> list[str]:
        errors: list[str] = []
        for round_ in range(rounds):
            batch = WriteBatch("postgresql")
            batch.add(ACCOUNTS, {**_account(f"r{round_}-EUR"), "owner": f"merchant-{round_}"})
            start.wait()
            try:
                with database.engine.begin() as connection:
                    batch.flush(connection)
            except IntegrityError as error:
                errors.append(str(error.orig).splitlines()[0])
        return errors

    with ThreadPoolExecutor(max_workers=sessions) as pool:
        errors = [
            error for errors in pool.map(insert_each_round, range(sessions)) for error in errors
        ]
    assert errors == [], f"{len(errors)} of {sessions * rounds} inserts failed: {errors[0]}"
    with database.engine.connect() as connection:
        accounts = connection.execute(select(func.count()).select_from(t.accounts)).scalar()
    assert accounts == rounds
