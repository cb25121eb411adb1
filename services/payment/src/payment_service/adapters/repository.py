"""The one place with the payment service's SQL (PostgreSQL and SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    Executable,
    Table,
    UpdateBase,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from payment_service.adapters import tables as t
from payment_service.adapters.batcher import WriteBatch, WriteTarget, insert_target
from payment_service.adapters.lock_waits import (
    lock_timeout_config,
    lock_timeouts_as,
    milliseconds,
    row_busy,
)
from payment_service.adapters.proto_codec import STREAM, event_to_envelope
from payment_service.adapters.replay_codec import outcome_from_json, outcome_to_json
from payment_service.adapters.tables import TIMESTAMP
from payment_service.domain.idempotency import (
    IdempotencyKeyInFlight,
    KeyClaim,
    Outcome,
    StoredKey,
)
from payment_service.domain.ledger import Account, LedgerTransaction
from payment_service.domain.model import (
    DomainEvent,
    LineItem,
    Payment,
    PaymentStatus,
    Refund,
    TopUp,
)
from payment_service.domain.money import MAX_AMOUNT

# --- statements, built once --------------------------------------------------------
# Parameters come at execute time, so SQLAlchemy finds each statement's compiled
# form in its cache by a key computed once per object instead of once per call.

_keys = t.idempotency_keys
_KEY_COLUMNS = ("user_id", "key", "operation", "fingerprint", "created_at", "expires_at")
_THIS_KEY = and_(_keys.c.user_id == bindparam("k_user_id"), _keys.c.key == bindparam("k_key"))

# PostgreSQL: the claim sets the key wait before it inserts (the subquery runs
# first, the insert waits for a conflicting uncommitted claim under it), and
# RETURNING, evaluated only when the row went in, sets the row-lock wait for the
# rest of the transaction: no SET LOCAL round trips.
_CLAIM_POSTGRESQL = (
    postgresql.insert(_keys)
    .from_select(
        list(_KEY_COLUMNS),
        select(*(bindparam(name, type_=_keys.c[name].type) for name in _KEY_COLUMNS)).select_from(
            select(lock_timeout_config("wait").label("lock_timeout")).subquery("wait")
        ),
    )
    .on_conflict_do_nothing(index_elements=["user_id", "key"])
    .returning(lock_timeout_config("lock_timeout"))
)
_CLAIM_SQLITE = (
    sqlite.insert(_keys)
    .on_conflict_do_nothing(index_elements=["user_id", "key"])
    .returning(_keys.c.user_id)
)
_SET_LOCK_TIMEOUT = select(lock_timeout_config("lock_timeout"))
_GET_KEY = select(_keys).where(_THIS_KEY)
_RENEW_KEY = update(_keys).where(_THIS_KEY)
_STORE_OUTCOME = update(_keys).where(_THIS_KEY).values(outcome=bindparam("k_outcome"))

_balances = t.balances
_BALANCE = select(_balances.c.amount).where(_balances.c.account_id == bindparam("b_account_id"))
_MOVED_AT = bindparam("b_now", type_=TIMESTAMP)
_DEBIT = (
    update(_balances)
    .where(
        _balances.c.account_id == bindparam("b_account_id"),
        _balances.c.amount >= bindparam("b_amount"),
    )
    .values(amount=_balances.c.amount - bindparam("b_amount"), updated_at=_MOVED_AT)
    .returning(_balances.c.amount)
)
_CREDIT = (
    update(_balances)
    .where(
        _balances.c.account_id == bindparam("b_account_id"),
        _balances.c.amount <= MAX_AMOUNT - bindparam("b_amount"),
    )
    .values(amount=_balances.c.amount + bindparam("b_amount"), updated_at=_MOVED_AT)
    .returning(_balances.c.amount)
)

_SAVE_PAYMENT = update(t.payments).where(t.payments.c.id == bindparam("p_id"))
_GET_PAYMENT = select(t.payments).where(
    t.payments.c.id == bindparam("p_id"), t.payments.c.user_id == bindparam("p_user_id")
)
_LOCK_PAYMENT = _GET_PAYMENT.with_for_update()


# --- where held-back writes go (sent together by adapters/batcher.py) ------------


def _outcome_part(prefix: str, columns: tuple[str, ...], many: bool) -> UpdateBase:
    if many:
        raise ValueError("a transaction stores one outcome")
    return (
        update(_keys)
        .where(
            _keys.c.user_id == bindparam(f"{prefix}k_user_id"),
            _keys.c.key == bindparam(f"{prefix}k_key"),
        )
        .values(outcome=bindparam(f"{prefix}k_outcome"))
    )


_ACCOUNTS = insert_target(t.accounts, skip_existing=True)
_BALANCES = insert_target(t.balances, skip_existing=True)
_TRANSACTIONS = insert_target(t.ledger_transactions)
_ENTRIES = insert_target(t.ledger_entries)
_PAYMENTS = insert_target(t.payments)
_ITEMS = insert_target(t.payment_items)
_REFUNDS = insert_target(t.refunds)
_TOP_UPS = insert_target(t.top_ups)
_EVENTS = insert_target(t.outbox)
_OUTCOME = WriteTarget({"postgresql": _STORE_OUTCOME, "sqlite": _STORE_OUTCOME}, _outcome_part)


class PaymentRepository:
    """Accounts, balances, ledger, payments, idempotency keys and the outbox."""

    def __init__(self, session: Session, events_stream: str = STREAM) -> None:
        self.session = session
        self.events_stream = events_stream
        self.dialect = session.get_bind().dialect.name
        # Writes whose result nobody reads wait here for the next statement or
        # the commit, and then go together. Safe for these writes: they insert,
        # plus the one update of the key's outcome, and none reads another.
        self._held_back = WriteBatch(self.dialect)
        # Set by the key claim that opens every write transaction: from then on
        # a lock wait that runs out is a busy wallet or payment row (ABORTED,
        # retry). Reads and the key clean-up claim nothing and keep the
        # driver's error, as they always have.
        self._writing = False

    def lock_waits(self) -> AbstractContextManager[None]:
        """Where a lock wait that ran out becomes a domain error (see `_writing`)."""
        return lock_timeouts_as(row_busy) if self._writing else nullcontext()

    def _execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[*tuple[Any, ...]]:
        # Core statements straight on the session's connection (same transaction),
        # without the ORM's per-statement execution layer; held-back writes first,
        # so every statement sees what came before it.
        if self._held_back:
            self.flush()
        with self.lock_waits():
            return self.session.connection().execute(statement, parameters)

    def _defer(self, target: WriteTarget, *rows: dict[str, Any]) -> None:
        self._held_back.add(target, *rows)

    def flush(self) -> None:
        """Send the held-back writes (see `WriteBatch.flush`). The unit of work
        flushes before it commits."""
        if self._held_back:
            with self.lock_waits():
                self._held_back.flush(self.session.connection())

    # --- locking -------------------------------------------------------------

    def set_lock_timeout(self, seconds: float) -> None:
        """How long this transaction's next lock waits may take (PostgreSQL;
        SQLite serialises whole write transactions with BEGIN IMMEDIATE)."""
        if self.dialect == "postgresql":
            self._execute(_SET_LOCK_TIMEOUT, {"lock_timeout": milliseconds(seconds)})

    # --- idempotency keys ----------------------------------------------------

    def claim_key(
        self, claim: KeyClaim, *, wait_seconds: float, lock_timeout_seconds: float
    ) -> StoredKey | None:
        """Claim the key for this transaction: None, or the key as an earlier
        request stored it (`domain.idempotency.decide` says what then).

        The unique insert waits while another transaction holds the same key
        uncommitted, at most `wait_seconds` (then IdempotencyKeyInFlight).
        Once claimed, later lock waits of the transaction (wallet, payment
        rows) may take `lock_timeout_seconds`.
        """
        row = _key_row(claim)
        with lock_timeouts_as(IdempotencyKeyInFlight):
            if self.dialect == "postgresql":
                claimed = self._execute(
                    _CLAIM_POSTGRESQL,
                    {
                        **row,
                        "wait": milliseconds(wait_seconds),
                        "lock_timeout": milliseconds(lock_timeout_seconds),
                    },
                ).first()
            else:
                claimed = self._execute(_CLAIM_SQLITE, row).first()
        self._writing = True
        if claimed is not None:
            return None
        this_key = {"k_user_id": claim.user_id, "k_key": claim.key}
        stored = self._execute(_GET_KEY, this_key).mappings().one()
        return StoredKey(
            operation=stored["operation"],
            fingerprint=stored["fingerprint"],
            expires_at=stored["expires_at"],
            outcome=None if stored["outcome"] is None else outcome_from_json(stored["outcome"]),
        )

    def take_over_key(self, claim: KeyClaim, *, lock_timeout_seconds: float) -> None:
        """Claim anew, for this request, an expired key that `claim_key`
        found; later lock waits may take `lock_timeout_seconds`."""
        this_key = {"k_user_id": claim.user_id, "k_key": claim.key}
        self._execute(_RENEW_KEY, {**this_key, **_key_row(claim), "outcome": None})
        self.set_lock_timeout(lock_timeout_seconds)

    def store_outcome(self, user_id: str, key: str, outcome: Outcome) -> None:
        self._defer(
            _OUTCOME, {"k_user_id": user_id, "k_key": key, "k_outcome": outcome_to_json(outcome)}
        )

    def delete_expired_keys(self, now: datetime, limit: int) -> int:
        expired = (
            select(t.idempotency_keys.c.user_id, t.idempotency_keys.c.key)
            .where(t.idempotency_keys.c.expires_at < now)
            .limit(limit)
        )
        rows = self._execute(expired).all()
        if not rows:
            return 0
        self._execute(
            delete(t.idempotency_keys).where(
                or_(
                    *(
                        and_(
                            t.idempotency_keys.c.user_id == user_id,
                            t.idempotency_keys.c.key == key,
                            t.idempotency_keys.c.expires_at < now,
                        )
                        for user_id, key in rows
                    )
                )
            )
        )
        return len(rows)

    # --- accounts and balances -----------------------------------------------

    def ensure_account(self, account: Account, now: datetime) -> None:
        """Create the account (and a zero balance if guarded) unless it exists."""
        self._defer(
            _ACCOUNTS,
            {
                "id": account.id,
                "kind": account.kind.value,
                "owner": account.owner,
                "currency": account.currency,
                "created_at": now,
            },
        )
        if account.guarded:
            self._defer(_BALANCES, {"account_id": account.id, "amount": 0, "updated_at": now})

    def balance(self, account: Account) -> int | None:
        """The stored balance of a guarded account; None when it has none (no wallet)."""
        amount: int | None = self._execute(_BALANCE, {"b_account_id": account.id}).scalar()
        return amount

    def debit(self, account: Account, amount: int, now: datetime) -> int | None:
        """Take `amount` from a guarded account; its new balance, or None when
        that would make it negative or it has no balance at all (tell the two
        apart with `balance`). The update locks the row until commit."""
        new_balance: int | None = self._execute(
            _DEBIT, {"b_account_id": account.id, "b_amount": amount, "b_now": now}
        ).scalar_one_or_none()
        return new_balance

    def credit(self, account: Account, amount: int, now: datetime) -> int | None:
        """Add `amount` to a guarded account; its new balance, or None when
        that would pass the largest amount a client can represent."""
        new_balance: int | None = self._execute(
            _CREDIT, {"b_account_id": account.id, "b_amount": amount, "b_now": now}
        ).scalar_one_or_none()
        return new_balance

    def wallet_balances(self, user_id: str) -> list[tuple[str, int]]:
        rows = self._execute(
            select(t.accounts.c.currency, t.balances.c.amount)
            .join(t.balances, t.balances.c.account_id == t.accounts.c.id)
            .where(t.accounts.c.kind == "wallet", t.accounts.c.owner == user_id)
            .order_by(t.accounts.c.currency)
        ).all()
        return [(currency, amount) for currency, amount in rows]

    # --- ledger ---------------------------------------------------------------

    def add_transaction(self, transaction: LedgerTransaction, now: datetime) -> None:
        self._defer(
            _TRANSACTIONS,
            {
                "id": transaction.id,
                "kind": transaction.kind.value,
                "reference_id": transaction.reference_id,
                "created_at": now,
            },
        )
        self._defer(
            _ENTRIES,
            *(
                {
                    "transaction_id": transaction.id,
                    "account_id": entry.account.id,
                    "currency": entry.account.currency,
                    "amount": entry.amount,
                }
                for entry in transaction.entries
            ),
        )

    # --- payments, refunds, top-ups -------------------------------------------

    def add_payment(self, payment: Payment) -> None:
        self._defer(_PAYMENTS, self._payment_row(payment))
        if payment.items:
            self._defer(
                _ITEMS,
                *(
                    {
                        "payment_id": payment.id,
                        "position": position,
                        "sku": item.sku,
                        "quantity": item.quantity,
                        "unit_amount": item.unit_amount,
                    }
                    for position, item in enumerate(payment.items)
                ),
            )

    def save_payment(self, payment: Payment) -> None:
        self._execute(
            _SAVE_PAYMENT,
            {
                "p_id": payment.id,
                "status": payment.status.value,
                "failure_reason": payment.failure_reason,
                "refunded_amount": payment.refunded_amount,
                "updated_at": payment.updated_at,
            },
        )

    @staticmethod
    def _payment_row(payment: Payment) -> dict[str, Any]:
        return {
            "id": payment.id,
            "user_id": payment.user_id,
            "merchant_id": payment.merchant_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "description": payment.description,
            "status": payment.status.value,
            "failure_reason": payment.failure_reason,
            "refunded_amount": payment.refunded_amount,
            "created_at": payment.created_at,
            "updated_at": payment.updated_at,
        }

    def get_payment(
        self, payment_id: str, user_id: str, *, for_update: bool = False
    ) -> Payment | None:
        """The user's payment (None for another user's: ids do not leak).
        `for_update` locks it until commit, so refunds of one payment queue."""
        statement = _LOCK_PAYMENT if for_update else _GET_PAYMENT
        row = (
            self._execute(statement, {"p_id": payment_id, "p_user_id": user_id}).mappings().first()
        )
        if row is None:
            return None
        return self._load_payments([row])[0]

    def list_payments(
        self, user_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[Payment]:
        """Newest first; `after` is the (created_at, id) of the last one seen."""
        statement = select(t.payments).where(t.payments.c.user_id == user_id)
        if after is not None:
            created_at, payment_id = after
            statement = statement.where(
                or_(
                    t.payments.c.created_at < created_at,
                    and_(t.payments.c.created_at == created_at, t.payments.c.id < payment_id),
                )
            )
        statement = statement.order_by(t.payments.c.created_at.desc(), t.payments.c.id.desc())
        rows = self._execute(statement.limit(limit)).mappings().all()
        return self._load_payments(rows)

    def _load_payments(self, rows: Sequence[Any]) -> list[Payment]:
        ids = [row["id"] for row in rows]
        items: dict[str, list[LineItem]] = {payment_id: [] for payment_id in ids}
        if ids:
            for item in self._execute(
                select(t.payment_items)
                .where(t.payment_items.c.payment_id.in_(ids))
                .order_by(t.payment_items.c.payment_id, t.payment_items.c.position)
            ).mappings():
                items[item["payment_id"]].append(
                    LineItem(item["sku"], item["quantity"], item["unit_amount"])
                )
        return [
            Payment(
                id=row["id"],
                user_id=row["user_id"],
                merchant_id=row["merchant_id"],
                amount=row["amount"],
                currency=row["currency"],
                items=tuple(items[row["id"]]),
                description=row["description"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                status=PaymentStatus(row["status"]),
                failure_reason=row["failure_reason"],
                refunded_amount=row["refunded_amount"],
            )
            for row in rows
        ]

    def add_refund(self, refund: Refund) -> None:
        self._defer(
            _REFUNDS,
            {
                "id": refund.id,
                "payment_id": refund.payment_id,
                "user_id": refund.user_id,
                "amount": refund.amount,
                "currency": refund.currency,
                "created_at": refund.created_at,
            },
        )

    def add_top_up(self, top_up: TopUp) -> None:
        self._defer(
            _TOP_UPS,
            {
                "id": top_up.id,
                "user_id": top_up.user_id,
                "amount": top_up.amount,
                "currency": top_up.currency,
                "created_at": top_up.created_at,
            },
        )

    # --- outbox -------------------------------------------------------------------

    def add_event(self, event: DomainEvent, now: datetime) -> None:
        """Write the event to the outbox, in this transaction."""
        subject_id, envelope = event_to_envelope(event, self.events_stream)
        self._defer(
            _EVENTS,
            {
                "event_id": envelope.id,
                "stream": envelope.stream,
                "key": envelope.key,
                "type": envelope.type,
                "subject_id": subject_id,
                "payload": envelope.SerializeToString(),
                "created_at": now,
            },
        )


def _key_row(claim: KeyClaim) -> dict[str, Any]:
    return {
        "user_id": claim.user_id,
        "key": claim.key,
        "operation": claim.operation,
        "fingerprint": claim.fingerprint,
        "created_at": claim.created_at,
        "expires_at": claim.expires_at,
    }


def expiry(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=hours)


def count_rows(session: Session, table: Table) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())
