"""What one write transaction sends, and the edges of the payment's debit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from payment_service.adapters import tables as t
from payment_service.adapters.unit_of_work import PaymentUnitOfWork
from payment_service.domain import ledger
from payment_service.domain.idempotency import KeyClaim, Outcome, decide
from payment_service.domain.model import CreatePayment, LineItem, Payment, TopUpWallet
from payment_service.entrypoints.app import handlers_from, reconcile_database
from sqlalchemy import event, func, select, text

pytestmark = pytest.mark.backends("sqlite", "postgres", "pgbouncer")


def _claim(uow: PaymentUnitOfWork, key: str, *, wait: float = 2.0, lock: float = 5.0):
    """Claim as a write does: None when the key is this transaction's, else the
    outcome to replay."""
    now = datetime.now(UTC)
    claim = KeyClaim("u1", key, "CreatePayment", "f", now, now + timedelta(days=1))
    stored = uow.payments.claim_key(claim, wait_seconds=wait, lock_timeout_seconds=lock)
    decision = decide(claim, stored)
    if decision.take_over:
        uow.payments.take_over_key(claim, lock_timeout_seconds=lock)
    return decision.replay


def _lock_timeout(uow: PaymentUnitOfWork) -> str:
    return str(uow.session.execute(text("SHOW lock_timeout")).scalar_one())


@pytest.mark.backends("postgres", "pgbouncer")
def test_the_claim_sets_the_lock_waits_of_its_transaction_only(database, backend):
    """No SET LOCAL round trips: the claim statement itself sets the key wait
    before it inserts and the row-lock wait once the key is claimed, both
    transaction-local (set_config(..., true)), so nothing leaks to the next
    transaction on the pooled connection, or, through PgBouncer, on the server
    connection the next client gets."""
    with PaymentUnitOfWork(database) as uow:
        assert _claim(uow, "k1", wait=1.5, lock=4.25) is None
        assert _lock_timeout(uow) == "4250ms"
        uow.payments.store_outcome("u1", "k1", Outcome(code="OK", body={}))
        uow.commit()
    with PaymentUnitOfWork(database) as uow:
        # A replay: the key was there, only the key wait was set.
        assert _claim(uow, "k1", wait=1.5, lock=4.25) == Outcome(code="OK", body={})
        assert _lock_timeout(uow) == "1500ms"
    with database.engine.connect() as connection:
        assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "0"


@pytest.mark.backends("postgres", "pgbouncer")
def test_an_expired_key_claimed_again_gets_the_row_lock_wait(database, backend):
    with PaymentUnitOfWork(database) as uow:
        assert _claim(uow, "old") is None
        uow.session.execute(
            t.idempotency_keys.update().values(expires_at=datetime.now(UTC) - timedelta(hours=1))
        )
        uow.commit()
    with PaymentUnitOfWork(database) as uow:
        assert _claim(uow, "old", lock=3.0) is None
        assert _lock_timeout(uow) == "3s"


@pytest.mark.backends("postgres", "pgbouncer")
def test_a_payment_waits_for_a_locked_wallet_no_longer_than_the_lock_timeout(
    database, settings, serve, *, backend, user, rpc_error
):
    client = serve(settings.model_copy(update={"lock_timeout_seconds": 0.3}))
    client.top_up(user, 1_000)
    with database.engine.connect() as holder:
        holder.execute(
            select(t.balances)
            .where(t.balances.c.account_id == ledger.wallet(user, "EUR").id)
            .with_for_update()
        )
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as busy:
            client.pay(user, 100)
        waited = time.monotonic() - began
        holder.rollback()
    assert rpc_error(busy.value)[:2] == (grpc.StatusCode.ABORTED, "CONCURRENT_UPDATE")
    assert 0.3 <= waited < 2.0  # the row-lock wait, not the key wait (2 s) or none
    assert client.balances(user) == {"EUR": 1_000}
    assert client.pay(user, 100).amount == 100


def test_a_payment_in_a_currency_without_a_wallet_moves_nothing_and_frees_the_key(
    client, database, user, rpc_error
):
    client.top_up(user, 1_000, "EUR")
    key = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as no_wallet:
        client.pay(user, 100, "USD", key=key)
    code, reason, _ = rpc_error(no_wallet.value)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_WALLET")
    assert "top up in it first" in no_wallet.value.details()
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(t.payments)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(t.idempotency_keys)).scalar() == 1
    # Nothing was recorded under the key: once the wallet exists, it pays.
    client.top_up(user, 500, "USD")
    assert client.pay(user, 100, "USD", key=key).amount == 100
    assert client.balances(user) == {"EUR": 1_000, "USD": 400}
    assert reconcile_database(database) == []


def test_an_emptied_wallet_is_insufficient_funds_not_a_missing_wallet(
    client, database, user, rpc_error
):
    client.top_up(user, 300)
    client.pay(user, 300)
    assert client.balances(user) == {"EUR": 0}
    with pytest.raises(grpc.RpcError) as empty:
        client.pay(user, 1)
    assert rpc_error(empty.value)[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
    )
    assert reconcile_database(database) == []


def test_a_payment_to_a_new_merchant_creates_its_account_once(client, database, user):
    client.top_up(user, 1_000)
    for _ in range(3):
        client.pay(user, 100, merchant="brand-new")
    with database.session() as session:
        merchants = session.execute(
            select(t.accounts.c.owner).where(t.accounts.c.kind == "merchant")
        ).scalars()
        assert list(merchants) == ["brand-new"]
    assert reconcile_database(database) == []


@pytest.mark.parametrize("items", [0, 1, 3])
def test_a_payment_is_three_statements_on_postgresql(database, settings, backend, items):
    """Claim (with both lock waits), debit, then every write of the payment in
    one statement: merchant account, payment, items, ledger transaction and
    entries, outbox event, stored outcome. SQLite runs them one by one."""
    handlers = handlers_from(database, settings)
    user = str(uuid.uuid4())
    handlers.top_up(TopUpWallet(user_id=user, amount=1_000, currency="EUR"), "top-up")
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        payment = handlers.create_payment(
            CreatePayment(
                user_id=user,
                amount=100 * items or 100,
                currency="EUR",
                merchant_id="shop-9",
                items=tuple(LineItem(f"sku-{n}", 1, 100) for n in range(items)),
            ),
            "pay",
        )
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    expected = {"postgres": 3, "pgbouncer": 3, "sqlite": 9 if items else 8}[backend]
    assert len(statements) == expected, statements
    assert handlers.get_payment(user, payment.id) == payment
    assert reconcile_database(database) == []


def test_held_back_writes_go_out_before_the_next_statement(database):
    now = datetime.now(UTC)
    payment = Payment("p-1", "u-1", "m-1", 100, "EUR", (LineItem("a", 1, 100),), "", now, now)
    with PaymentUnitOfWork(database) as uow:
        uow.payments.add_payment(payment)
        found = uow.payments.get_payment("p-1", "u-1")
        assert found is not None
        assert found.items == payment.items
    with PaymentUnitOfWork(database) as uow:  # rolled back: nothing was kept
        assert uow.payments.get_payment("p-1", "u-1") is None
