"""How a payment's debit tells "no wallet" from "too little", with a fake wallet store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from payment_service.domain import ledger
from payment_service.service_layer.handlers import debit_wallet
from switchyard_kit import FailedPrecondition

NOW = datetime(2025, 1, 1, tzinfo=UTC)
WALLET = ledger.wallet("u1", "EUR")


class FakeWallets:
    """The repository's debit and balance over a dict; `arrives` is money (or a
    whole new wallet) that commits elsewhere right after the first debit."""

    def __init__(self, balances: dict[str, int], arrives: int | None = None) -> None:
        self.balances = balances
        self.arrives = arrives
        self.calls: list[str] = []

    def debit(self, account: ledger.Account, amount: int, now: datetime) -> int | None:
        self.calls.append("debit")
        held = self.balances.get(account.id)
        result = None
        if held is not None and held >= amount:
            self.balances[account.id] = result = held - amount
        if self.arrives is not None:
            self.balances[account.id] = self.balances.get(account.id, 0) + self.arrives
            self.arrives = None
        return result

    def balance(self, account: ledger.Account) -> int | None:
        self.calls.append("balance")
        return self.balances.get(account.id)


def test_a_debit_that_goes_through_is_one_statement():
    wallets = FakeWallets({WALLET.id: 500})
    assert debit_wallet(wallets, WALLET, 200, NOW) is True
    assert wallets.balances[WALLET.id] == 300
    assert wallets.calls == ["debit"]


def test_too_little_is_insufficient_funds_not_an_error():
    wallets = FakeWallets({WALLET.id: 100})
    assert debit_wallet(wallets, WALLET, 200, NOW) is False
    assert wallets.balances[WALLET.id] == 100
    assert wallets.calls == ["debit", "balance"]


def test_an_empty_wallet_is_insufficient_funds_too():
    wallets = FakeWallets({WALLET.id: 0})
    assert debit_wallet(wallets, WALLET, 1, NOW) is False


def test_no_wallet_in_the_currency_is_a_failed_precondition():
    # The request is valid; the state refuses it (a top-up opens the wallet),
    # so a schema-valid payment is never answered INVALID_ARGUMENT (the fuzzer's ST202).
    wallets = FakeWallets({})
    with pytest.raises(FailedPrecondition) as refused:
        debit_wallet(wallets, WALLET, 200, NOW)
    assert refused.value.reason == "NO_WALLET"
    assert "top up in it first" in refused.value.message
    assert wallets.balances == {}


@pytest.mark.parametrize("before", [None, 50])
def test_money_that_arrives_between_the_debit_and_the_check_is_used(before):
    """A first top-up (or any top-up) committing between the two statements:
    the answer is not "no wallet" or "too little" when it would pay now."""
    wallets = FakeWallets({} if before is None else {WALLET.id: before}, arrives=1_000)
    assert debit_wallet(wallets, WALLET, 200, NOW) is True
    assert wallets.balances[WALLET.id] == (before or 0) + 1_000 - 200
    assert wallets.calls == ["debit", "balance", "debit"]
