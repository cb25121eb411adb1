"""The double-entry ledger: accounts, entries, and transactions that balance.

Every movement of money is one transaction of at least two entries whose
amounts sum to zero per currency. A positive entry adds to the account's
balance, a negative one takes from it. Entries are never changed or deleted:
a correction is a new transaction.

Accounts:
- wallet (owner: user id): must never go negative; its balance is stored and
  updated in the same database transaction as its entries.
- merchant (owner: merchant id): receives payments, pays refunds.
- external funding (owner: "funding"): where top-ups come from; it goes
  negative by exactly the money that entered the system.
Merchant and funding balances are the sum of their entries (no stored row),
so a flash sale towards one merchant does not serialise on one hot row.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from payment_service.domain.model import Payment, Refund, TopUp

_ACCOUNT_NAMESPACE = uuid.UUID("5f0e8a52-31c5-4a53-9d8e-0b8d63f4a0c1")
FUNDING_OWNER = "funding"


class AccountKind(StrEnum):
    WALLET = "wallet"
    MERCHANT = "merchant"
    EXTERNAL = "external"


class TransactionKind(StrEnum):
    TOP_UP = "top_up"
    PAYMENT = "payment"
    REFUND = "refund"


class UnbalancedTransaction(ValueError):
    """A transaction whose entries do not sum to zero: a bug, never input."""


@dataclass(frozen=True)
class Account:
    kind: AccountKind
    owner: str
    currency: str

    @property
    def id(self) -> str:
        """Stable, so every process names the same account the same way."""
        return str(uuid.uuid5(_ACCOUNT_NAMESPACE, f"{self.kind}:{self.owner}:{self.currency}"))

    @property
    def guarded(self) -> bool:
        """Must never go negative (its balance is stored and locked)."""
        return self.kind is AccountKind.WALLET


def wallet(user_id: str, currency: str) -> Account:
    return Account(AccountKind.WALLET, user_id, currency)


def merchant(merchant_id: str, currency: str) -> Account:
    return Account(AccountKind.MERCHANT, merchant_id, currency)


def funding(currency: str) -> Account:
    return Account(AccountKind.EXTERNAL, FUNDING_OWNER, currency)


@dataclass(frozen=True)
class Entry:
    account: Account
    amount: int


@dataclass(frozen=True)
class LedgerTransaction:
    id: str
    kind: TransactionKind
    reference_id: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        if len(self.entries) < 2:
            raise UnbalancedTransaction("a transaction needs at least two entries")
        sums: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            if entry.amount == 0:
                raise UnbalancedTransaction("an entry moves a non-zero amount")
            sums[entry.account.currency] += entry.amount
        if any(sums.values()):
            raise UnbalancedTransaction(f"entries do not sum to zero: {dict(sums)}")


def _transfer(
    kind: TransactionKind, reference_id: str, source: Account, target: Account, amount: int
) -> LedgerTransaction:
    return LedgerTransaction(
        id=str(uuid.uuid4()),
        kind=kind,
        reference_id=reference_id,
        entries=(Entry(source, -amount), Entry(target, amount)),
    )


def top_up_transaction(top_up: TopUp) -> LedgerTransaction:
    return _transfer(
        TransactionKind.TOP_UP,
        top_up.id,
        funding(top_up.currency),
        wallet(top_up.user_id, top_up.currency),
        top_up.amount,
    )


def payment_transaction(payment: Payment) -> LedgerTransaction:
    return _transfer(
        TransactionKind.PAYMENT,
        payment.id,
        wallet(payment.user_id, payment.currency),
        merchant(payment.merchant_id, payment.currency),
        payment.amount,
    )


def refund_transaction(refund: Refund, payment: Payment) -> LedgerTransaction:
    return _transfer(
        TransactionKind.REFUND,
        refund.id,
        merchant(payment.merchant_id, refund.currency),
        wallet(payment.user_id, refund.currency),
        refund.amount,
    )
