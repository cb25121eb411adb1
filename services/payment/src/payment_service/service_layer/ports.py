"""What the use cases need from storage, as interfaces: the unit of work and its
store, the codec of what an idempotency key replays, and the ledger audit.

`adapters/repository.py` and `adapters/unit_of_work.py` implement the storage
on SQLAlchemy (PostgreSQL, SQLite), `adapters/replay_codec.py` the codec,
`adapters/reconciliation.py` the audit; unit tests implement them with small
fakes. The composition root (`entrypoints/app.py`) hands the adapters in.
A lock wait that runs out in a write transaction comes out of them as a
domain error (ABORTED), never as a driver error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from switchyard_kit import Transaction

from payment_service.domain.idempotency import KeyClaim, Outcome, StoredKey
from payment_service.domain.ledger import Account, LedgerTransaction
from payment_service.domain.model import DomainEvent, Payment, Refund, RefundResult, TopUp


class PaymentStore(Protocol):
    """Accounts, balances, ledger, payments, idempotency keys and the outbox."""

    def claim_key(
        self, claim: KeyClaim, *, wait_seconds: float, lock_timeout_seconds: float
    ) -> StoredKey | None: ...

    def take_over_key(self, claim: KeyClaim, *, lock_timeout_seconds: float) -> None: ...

    def store_outcome(self, user_id: str, key: str, outcome: Outcome) -> None: ...

    def delete_expired_keys(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` keys expired at `now`; how many went."""
        ...

    def ensure_account(self, account: Account, now: datetime) -> None: ...

    def balance(self, account: Account) -> int | None: ...

    def debit(self, account: Account, amount: int, now: datetime) -> int | None: ...

    def credit(self, account: Account, amount: int, now: datetime) -> int | None: ...

    def wallet_balances(self, user_id: str) -> list[tuple[str, int]]: ...

    def add_transaction(self, transaction: LedgerTransaction, now: datetime) -> None: ...

    def add_payment(self, payment: Payment) -> None: ...

    def save_payment(self, payment: Payment) -> None: ...

    def get_payment(
        self, payment_id: str, user_id: str, *, for_update: bool = False
    ) -> Payment | None: ...

    def list_payments(
        self, user_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[Payment]: ...

    def add_refund(self, refund: Refund) -> None: ...

    def add_top_up(self, top_up: TopUp) -> None: ...

    def add_event(self, event: DomainEvent, now: datetime) -> None: ...


class Wallets(Protocol):
    """The part of the store a payment's debit needs."""

    def balance(self, account: Account) -> int | None: ...

    def debit(self, account: Account, amount: int, now: datetime) -> int | None: ...


class UnitOfWork(Transaction, Protocol):
    """One transaction: `with uow: ...; uow.commit()`. Leaving the block
    without commit rolls back."""

    @property
    def payments(self) -> PaymentStore: ...


class UnitOfWorkFactory(Protocol):
    """Makes a unit of work about `user_id`'s money: a transaction on the
    shard that holds the user (every use case reads and writes one user's data).

    `read_only=True`: a display read that may come from a replica (stale by
    at most the configured lag bound), never one that has not yet replayed
    the user's last write; it never commits. Anything that decides a write
    uses a writing unit (the primary), which records the write on commit.
    """

    def __call__(self, user_id: str, *, read_only: bool = False) -> UnitOfWork: ...


class ReplayCodec(Protocol):
    """The results of the writes as the plain dicts an idempotency key stores and
    replays. Stored results outlive a deploy: decoding reads older versions."""

    def payment_to_dict(self, payment: Payment) -> dict[str, Any]: ...

    def payment_from_dict(self, data: dict[str, Any]) -> Payment: ...

    def top_up_to_dict(self, top_up: TopUp) -> dict[str, Any]: ...

    def top_up_from_dict(self, data: dict[str, Any]) -> TopUp: ...

    def refund_result_to_dict(self, result: RefundResult) -> dict[str, Any]: ...

    def refund_result_from_dict(self, data: dict[str, Any]) -> RefundResult: ...


class LedgerAudit(Protocol):
    """Re-derives the ledger invariants from storage."""

    def failures(self) -> Sequence[tuple[str, str, list[str]]]:
        """(check, description, sample of offending rows) per broken invariant."""
        ...
