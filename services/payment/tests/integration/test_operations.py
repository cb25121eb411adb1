"""Operator commands and the in-flight rule."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from payment_service.adapters import tables as t
from payment_service.entrypoints.app import cleanup_database, reconcile_database
from sqlalchemy import func, insert, select, text, update


def _cli(database_url: str, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYMENT_DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "payment_service", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reconcile_command_passes_on_good_books_and_fails_on_tampering(
    client, database, database_url, user
):
    client.top_up(user, 1_000)
    client.pay(user, 400)
    ok = _cli(database_url, "reconcile")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout
    # Someone edits a stored balance by hand: the books no longer add up.
    with database.session() as session, session.begin():
        session.execute(update(t.balances).values(amount=t.balances.c.amount + 1))
    violations = {v.check for v in reconcile_database(database)}
    assert "balance_matches_entries" in violations
    broken = _cli(database_url, "reconcile")
    assert broken.returncode == 1
    assert "balance_matches_entries" in broken.stdout


def test_reconcile_finds_an_unbalanced_ledger(client, database, user):
    client.top_up(user, 1_000)
    with database.session() as session, session.begin():
        entry = session.execute(select(t.ledger_entries.c.id).limit(1)).scalar_one()
        session.execute(
            update(t.ledger_entries).where(t.ledger_entries.c.id == entry).values(amount=7)
        )
    checks = {v.check for v in reconcile_database(database)}
    assert {"ledger_sums_to_zero", "transaction_balanced"} <= checks


def test_expired_keys_are_cleaned_up_and_reusable(client, database, database_url, user):
    client.top_up(user, 1_000, key="old-key")
    client.top_up(user, 1_000, key="fresh-key")
    with database.session() as session, session.begin():
        session.execute(
            update(t.idempotency_keys)
            .where(t.idempotency_keys.c.key == "old-key")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    # An expired key not cleaned up yet starts a new life.
    assert client.top_up(user, 5, key="old-key").amount == 5
    with database.session() as session, session.begin():
        session.execute(
            update(t.idempotency_keys)
            .where(t.idempotency_keys.c.key == "old-key")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert cleanup_database(database) == 1
    result = _cli(database_url, "cleanup-idempotency-keys")
    assert result.returncode == 0
    assert "deleted 0" in result.stdout
    with database.session() as session:
        keys = session.execute(select(t.idempotency_keys.c.key)).scalars().all()
    assert keys == ["fresh-key"]


@pytest.mark.backends("postgres")
def test_a_request_waiting_on_an_in_flight_key_gets_409(
    client, database, settings, rpc_error, backend
):
    user = str(uuid.uuid4())
    client.top_up(user, 1_000)
    # Another request holds the key: its claim is inserted but not committed.
    with database.engine.connect() as holder:
        holder.execute(
            insert(t.idempotency_keys).values(
                user_id=user,
                key="busy",
                operation="CreatePayment",
                fingerprint="x",
                outcome=None,
                created_at=datetime.now(UTC),
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        with pytest.raises(grpc.RpcError) as busy:
            client.pay(user, 100, key="busy")
        holder.rollback()
    code, reason, _ = rpc_error(busy.value)
    assert (code, reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_IN_FLIGHT")
    # Once the holder is gone the key is free and nothing was moved meanwhile.
    assert client.balances(user) == {"EUR": 1_000}
    assert client.pay(user, 100, key="busy").amount == 100
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(t.payments)).scalar_one() == 1
        session.execute(text("SELECT 1"))
