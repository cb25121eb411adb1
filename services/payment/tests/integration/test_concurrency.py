"""Real threads against the real server: no double charge, no lost money."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from payment_service.adapters import tables as t
from payment_service.domain.ledger import AccountKind
from payment_service.entrypoints.app import reconcile_database
from sqlalchemy import func, select

pytestmark = pytest.mark.backends("sqlite", "postgres", "pgbouncer")


def _ledger_transactions(database, reference_ids=None) -> int:
    statement = select(func.count()).select_from(t.ledger_transactions)
    if reference_ids is not None:
        statement = statement.where(t.ledger_transactions.c.reference_id.in_(reference_ids))
    with database.session() as session:
        return int(session.execute(statement).scalar_one())


def test_100_concurrent_identical_requests_charge_once(client, database, user):
    client.top_up(user, 100_000)
    key = str(uuid.uuid4())
    start = threading.Barrier(100)

    def pay(_: int) -> bytes:
        start.wait()
        payment = client.pay(user, 1_234, items=[("sku-1", 1, 1_234)], key=key)
        return payment.SerializeToString()

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(pool.map(pay, range(100)))
    elapsed = time.perf_counter() - began
    assert len(set(responses)) == 1, "every response is the same payment, byte for byte"
    assert client.balances(user) == {"EUR": 100_000 - 1_234}
    with database.session() as session:
        payments = session.execute(
            select(t.payments.c.id).where(t.payments.c.user_id == user)
        ).scalars()
        payment_ids = list(payments)
    assert len(payment_ids) == 1
    assert _ledger_transactions(database, payment_ids) == 1
    assert reconcile_database(database) == []
    print(f"100 concurrent identical requests: {elapsed:.2f}s")


def test_many_concurrent_payments_never_overdraw(client, database, user, rpc_error):
    """60 threads race for a wallet that can pay only 25 of them."""
    client.top_up(user, 2_500)
    start = threading.Barrier(60)

    def pay(_: int) -> str:
        start.wait()
        try:
            client.pay(user, 100)
        except grpc.RpcError as error:
            return rpc_error(error)[1]
        return "OK"

    with ThreadPoolExecutor(max_workers=60) as pool:
        outcomes = list(pool.map(pay, range(60)))
    assert outcomes.count("OK") == 25
    assert outcomes.count("INSUFFICIENT_FUNDS") == 35
    assert client.balances(user) == {"EUR": 0}
    assert reconcile_database(database) == []


@pytest.mark.parametrize("seed", [20250101])
def test_random_concurrent_payments_and_refunds_keep_the_books(
    database, backend, random_operations, seed
):
    operations = 400 if backend == "sqlite" else 1_000
    elapsed, outcomes = random_operations(seed=seed, operations=operations, threads=16)
    assert "INTERNAL" not in outcomes
    assert outcomes.get("OK", 0) > operations // 3
    violations = reconcile_database(database)
    assert violations == [], [str(v) for v in violations]
    with database.session() as session:
        negative = session.execute(
            select(func.count())
            .select_from(t.balances.join(t.accounts, t.accounts.c.id == t.balances.c.account_id))
            .where(t.accounts.c.kind == AccountKind.WALLET.value, t.balances.c.amount < 0)
        ).scalar_one()
    assert negative == 0
    print(f"{operations} random operations on {backend}: {elapsed:.2f}s, outcomes {outcomes}")
