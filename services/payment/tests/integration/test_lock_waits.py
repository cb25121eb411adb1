"""A lock wait that runs out, as the repository reports it: a domain error in a
write transaction (from its key claim on), the driver's error before that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from payment_service.adapters import tables as t
from payment_service.adapters.unit_of_work import PaymentUnitOfWork
from payment_service.domain import ledger
from payment_service.domain.idempotency import IdempotencyKeyInFlight, KeyClaim
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from switchyard_kit import Aborted

WALLET = ledger.wallet("u1", "EUR")


def _claim(key: str) -> KeyClaim:
    now = datetime.now(UTC)
    return KeyClaim("u1", key, "CreatePayment", "f", now, now + timedelta(days=1))


@pytest.fixture
def funded(database):
    now = datetime.now(UTC)
    with PaymentUnitOfWork(database) as uow:
        uow.payments.ensure_account(WALLET, now)
        assert uow.payments.credit(WALLET, 1_000, now) == 1_000
        uow.commit()
    return database


@pytest.mark.backends("postgres", "pgbouncer")
def test_a_locked_wallet_is_aborted_concurrent_update_after_the_claim(funded, backend):
    with funded.engine.connect() as holder:
        holder.execute(
            select(t.balances).where(t.balances.c.account_id == WALLET.id).with_for_update()
        )
        with PaymentUnitOfWork(funded) as uow:
            uow.payments.claim_key(_claim("k1"), wait_seconds=1.0, lock_timeout_seconds=0.1)
            with pytest.raises(Aborted) as busy:
                uow.payments.debit(WALLET, 10, datetime.now(UTC))
        holder.rollback()
    assert (busy.value.code, busy.value.reason) == ("ABORTED", "CONCURRENT_UPDATE")


@pytest.mark.backends("postgres", "pgbouncer")
def test_a_key_held_by_an_uncommitted_claim_is_in_flight(funded, backend):
    with PaymentUnitOfWork(funded) as first:
        first.payments.claim_key(_claim("k2"), wait_seconds=1.0, lock_timeout_seconds=1.0)
        with PaymentUnitOfWork(funded) as second, pytest.raises(IdempotencyKeyInFlight):
            second.payments.claim_key(_claim("k2"), wait_seconds=0.1, lock_timeout_seconds=1.0)


@pytest.mark.backends("postgres", "pgbouncer")
def test_without_a_claim_the_driver_error_is_left_as_it_is(funded, backend):
    """Reads claim no key: their lock errors stay the driver's, as they were."""
    with funded.engine.connect() as holder:
        holder.execute(
            select(t.balances).where(t.balances.c.account_id == WALLET.id).with_for_update()
        )
        with PaymentUnitOfWork(funded) as uow:
            uow.payments.set_lock_timeout(0.1)
            with pytest.raises(OperationalError):
                uow.payments.debit(WALLET, 10, datetime.now(UTC))
        holder.rollback()
