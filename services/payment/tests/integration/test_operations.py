"""Operator commands and the in-flight rule."""

from __future__ import annotations

import json
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


def _expired_keys(database, count: int, *, expired: bool = True) -> None:
    now = datetime.now(UTC)
    when = now - timedelta(hours=1) if expired else now + timedelta(hours=1)
    with database.session() as session, session.begin():
        session.execute(
            insert(t.idempotency_keys),
            [
                {
                    "user_id": str(uuid.uuid4()),
                    "key": f"k{index}",
                    "operation": "TopUpWallet",
                    "fingerprint": "x",
                    "outcome": None,
                    "created_at": now - timedelta(days=2),
                    "expires_at": when,
                }
                for index in range(count)
            ],
        )


def _key_count(database) -> int:
    with database.session() as session:
        return int(
            session.execute(select(func.count()).select_from(t.idempotency_keys)).scalar_one()
        )


def test_key_cleanup_is_bounded_per_run_and_idempotent(database):
    _expired_keys(database, 25)
    _expired_keys(database, 3, expired=False)
    # At most max_keys per run, in batches: the rest waits for the next run.
    assert cleanup_database(database, batch_size=4, max_keys=10) == 10
    assert _key_count(database) == 18
    assert cleanup_database(database, batch_size=4, max_keys=10) == 10
    assert cleanup_database(database, batch_size=4, max_keys=10) == 5
    # Keys within their lifetime stay; a further run deletes nothing.
    assert cleanup_database(database, batch_size=4, max_keys=10) == 0
    assert _key_count(database) == 3


def test_cleanup_command_reads_its_bound_from_the_settings(database, database_url):
    _expired_keys(database, 7)
    env = {"PAYMENT_RETENTION_BATCH_SIZE": "2", "PAYMENT_RETENTION_MAX_ROWS_PER_RUN": "5"}
    result = subprocess.run(
        [sys.executable, "-m", "payment_service", "cleanup-idempotency-keys"],
        env={**os.environ, "PAYMENT_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "deleted 5 " in result.stdout
    assert _key_count(database) == 2


def test_a_violation_fails_reconcile_with_an_error_line_an_alert_can_match(
    client, database, database_url, user
):
    client.top_up(user, 1_000)
    with database.session() as session, session.begin():
        session.execute(update(t.balances).values(amount=t.balances.c.amount + 1))
    env = {**os.environ, "PAYMENT_DATABASE_URL": database_url, "LOG_LEVEL": "INFO"}
    result = subprocess.run(
        [sys.executable, "-m", "payment_service", "reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [line for line in lines if line.get("event") == "payment.reconcile.violation"]
    assert errors, result.stdout
    assert errors[0]["level"] == "error"
    assert "balance_matches_entries" in {line["check"] for line in errors}
