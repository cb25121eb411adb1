"""The payment use cases. Each write runs in one transaction that claims the
idempotency key, moves the money, records the outcome and writes the event."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from switchyard_kit import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    utc_now,
)

from payment_service.domain import errors, ledger
from payment_service.domain.idempotency import (
    KeyClaim,
    Outcome,
    check_key,
    decide,
    fingerprint,
)
from payment_service.domain.model import (
    CreatePayment,
    Payment,
    PaymentRefunded,
    PaymentSucceeded,
    Refund,
    RefundPayment,
    RefundResult,
    TopUp,
    TopUpWallet,
    WalletToppedUp,
    payment_id_problem,
)
from payment_service.service_layer.ports import (
    ReplayCodec,
    UnitOfWork,
    UnitOfWorkFactory,
    Wallets,
)

ResultT = TypeVar("ResultT")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class RecordedFailure(Exception):
    """A business failure that is kept (committed with the key), then reported."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


_ERRORS: dict[str, type[DomainError]] = {
    "FAILED_PRECONDITION": FailedPrecondition,
    "ABORTED": Aborted,
}


def _replay(outcome: Outcome, decode: Callable[[dict[str, Any]], ResultT]) -> ResultT:
    if outcome.code == "OK" and outcome.body is not None:
        return decode(outcome.body)
    raise _ERRORS.get(outcome.code, FailedPrecondition)(outcome.message, reason=outcome.reason)


def debit_wallet(payments: Wallets, wallet: ledger.Account, amount: int, now: datetime) -> bool:
    """Take `amount` from the wallet (locking it until commit): True, or False
    when it holds too little. FailedPrecondition (NO_WALLET) when the user has
    no wallet in that currency (nothing is recorded then, the key stays free).

    The debit comes first and alone on the way that succeeds; only when it
    moved nothing does its balance say why. A wallet created or topped up
    between the two statements gets the debit tried once more, so each answer
    is true at the moment of the statement that gave it."""
    if payments.debit(wallet, amount, now) is not None:
        return True
    held = payments.balance(wallet)
    if held is None:
        # The state refuses it, not the request: the same payment succeeds
        # once a top-up has opened the wallet (google.rpc's FAILED_PRECONDITION).
        raise FailedPrecondition(
            f"your wallet holds no {wallet.currency}: top up in it first",
            reason=errors.NO_WALLET,
        )
    return held >= amount and payments.debit(wallet, amount, now) is not None


@dataclass(frozen=True)
class IdempotencySettings:
    # Keys are kept at least this long (the API promises 24 h).
    ttl_hours: float = 24.0
    # How long a request waits for another one holding the same key.
    wait_seconds: float = 2.0
    # How long a transaction waits for a row lock (wallet, payment) afterwards.
    lock_timeout_seconds: float = 5.0


class PaymentHandlers:
    """Wallets, payments and refunds for the calling user."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        replays: ReplayCodec,
        settings: IdempotencySettings | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.uow_factory = uow_factory
        self.replays = replays
        self.settings = settings or IdempotencySettings()
        self.clock = clock

    # --- the idempotent write path -------------------------------------------

    def _idempotent(
        self,
        *,
        user_id: str,
        key: str | None,
        operation: str,
        command: Any,
        work: Callable[[UnitOfWork, datetime], ResultT],
        encode: Callable[[ResultT], dict[str, Any]],
        decode: Callable[[dict[str, Any]], ResultT],
    ) -> ResultT:
        key = check_key(key)
        command.validate()
        now = self.clock()
        claim = KeyClaim(
            user_id=user_id,
            key=key,
            operation=operation,
            fingerprint=fingerprint(operation, command),
            created_at=now,
            expires_at=now + timedelta(hours=self.settings.ttl_hours),
        )
        with self.uow_factory(user_id) as uow:
            stored = uow.payments.claim_key(
                claim,
                wait_seconds=self.settings.wait_seconds,
                lock_timeout_seconds=self.settings.lock_timeout_seconds,
            )
            decision = decide(claim, stored)
            if decision.replay is not None:
                return _replay(decision.replay, decode)
            if decision.take_over:
                uow.payments.take_over_key(
                    claim, lock_timeout_seconds=self.settings.lock_timeout_seconds
                )
            try:
                result = work(uow, now)
            except RecordedFailure as failure:
                error = failure.error
                uow.payments.store_outcome(
                    user_id,
                    key,
                    Outcome(code=error.code, reason=error.reason, message=error.message),
                )
                uow.commit()
                raise error from None
            uow.payments.store_outcome(user_id, key, Outcome(code="OK", body=encode(result)))
            uow.commit()
            return result

    # --- writes -------------------------------------------------------------------

    def top_up(self, command: TopUpWallet, key: str | None) -> TopUp:
        def work(uow: UnitOfWork, now: datetime) -> TopUp:
            wallet = ledger.wallet(command.user_id, command.currency)
            uow.payments.ensure_account(ledger.funding(command.currency), now)
            uow.payments.ensure_account(wallet, now)
            balance = uow.payments.credit(wallet, command.amount, now)
            if balance is None:
                raise FailedPrecondition(
                    "the wallet balance would exceed the largest amount allowed",
                    reason=errors.BALANCE_LIMIT_EXCEEDED,
                )
            top_up = TopUp(
                id=str(uuid.uuid4()),
                user_id=command.user_id,
                amount=command.amount,
                currency=command.currency,
                balance=balance,
                created_at=now,
            )
            uow.payments.add_top_up(top_up)
            uow.payments.add_transaction(ledger.top_up_transaction(top_up), now)
            uow.payments.add_event(WalletToppedUp(top_up), now)
            return top_up

        return self._idempotent(
            user_id=command.user_id,
            key=key,
            operation="TopUpWallet",
            command=command,
            work=work,
            encode=self.replays.top_up_to_dict,
            decode=self.replays.top_up_from_dict,
        )

    def create_payment(self, command: CreatePayment, key: str | None) -> Payment:
        def work(uow: UnitOfWork, now: datetime) -> Payment:
            payment = Payment(
                id=str(uuid.uuid4()),
                user_id=command.user_id,
                merchant_id=command.merchant_id,
                amount=command.amount,
                currency=command.currency,
                items=command.items,
                description=command.description,
                created_at=now,
                updated_at=now,
            )
            wallet = ledger.wallet(command.user_id, command.currency)
            if not debit_wallet(uow.payments, wallet, command.amount, now):
                payment.fail(errors.INSUFFICIENT_FUNDS, now)
                uow.payments.add_payment(payment)
                raise RecordedFailure(
                    FailedPrecondition(
                        f"insufficient funds: payment {payment.id} failed and nothing was charged",
                        reason=errors.INSUFFICIENT_FUNDS,
                    )
                )
            # After the debit: the account insert (a no-op once it exists) then
            # goes out with the payment's other writes, not as a statement of its own.
            uow.payments.ensure_account(ledger.merchant(command.merchant_id, command.currency), now)
            payment.succeed(now)
            uow.payments.add_payment(payment)
            uow.payments.add_transaction(ledger.payment_transaction(payment), now)
            uow.payments.add_event(PaymentSucceeded(payment), now)
            return payment

        return self._idempotent(
            user_id=command.user_id,
            key=key,
            operation="CreatePayment",
            command=command,
            work=work,
            encode=self.replays.payment_to_dict,
            decode=self.replays.payment_from_dict,
        )

    def refund(self, command: RefundPayment, key: str | None) -> RefundResult:
        def work(uow: UnitOfWork, now: datetime) -> RefundResult:
            payment = uow.payments.get_payment(command.payment_id, command.user_id, for_update=True)
            if payment is None:
                raise NotFound("no such payment")
            if command.currency and command.currency != payment.currency:
                # The payment's currency is state: the same request suits another payment.
                raise FailedPrecondition(
                    f"currency mismatch: the payment is in {payment.currency}",
                    reason=errors.CURRENCY_MISMATCH,
                )
            remaining = payment.amount - payment.refunded_amount
            amount = command.amount if command.amount is not None else remaining
            payment.refund(amount, now)  # checks the state machine and what is left
            refund = Refund(
                id=str(uuid.uuid4()),
                payment_id=payment.id,
                user_id=payment.user_id,
                amount=amount,
                currency=payment.currency,
                created_at=now,
            )
            wallet = ledger.wallet(payment.user_id, payment.currency)
            if uow.payments.credit(wallet, amount, now) is None:
                raise FailedPrecondition(
                    "the wallet balance would exceed the largest amount allowed",
                    reason=errors.BALANCE_LIMIT_EXCEEDED,
                )
            uow.payments.save_payment(payment)
            uow.payments.add_refund(refund)
            uow.payments.add_transaction(ledger.refund_transaction(refund, payment), now)
            uow.payments.add_event(PaymentRefunded(refund, payment), now)
            return RefundResult(refund=refund, payment=payment)

        return self._idempotent(
            user_id=command.user_id,
            key=key,
            operation="RefundPayment",
            command=command,
            work=work,
            encode=self.replays.refund_result_to_dict,
            decode=self.replays.refund_result_from_dict,
        )

    # --- reads ----------------------------------------------------------------------

    # Display reads: a replica may serve them (see ports.UnitOfWorkFactory).

    def get_wallet(self, user_id: str) -> list[tuple[str, int]]:
        with self.uow_factory(user_id, read_only=True) as uow:
            return uow.payments.wallet_balances(user_id)

    def get_payment(self, user_id: str, payment_id: str) -> Payment:
        if problem := payment_id_problem(payment_id):
            raise InvalidArgument("invalid payment id", [FieldViolation("payment_id", problem)])
        with self.uow_factory(user_id, read_only=True) as uow:
            payment = uow.payments.get_payment(payment_id, user_id)
        if payment is None:
            raise NotFound("no such payment")
        return payment

    def list_payments(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[Payment], str]:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(
                "invalid page size", [FieldViolation("page_size", f"0 to {MAX_PAGE_SIZE}")]
            )
        size = page_size or DEFAULT_PAGE_SIZE
        after = decode_page_token(page_token) if page_token else None
        with self.uow_factory(user_id, read_only=True) as uow:
            page = uow.payments.list_payments(user_id, size + 1, after)
        if len(page) <= size:
            return page, ""
        last = page[size - 1]
        return page[:size], encode_page_token(last.created_at, last.id)


def encode_page_token(created_at: datetime, payment_id: str) -> str:
    raw = json.dumps({"t": created_at.isoformat(), "i": payment_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# Our tokens are about 110 characters; anything much longer is not one of them.
MAX_PAGE_TOKEN_LENGTH = 512


def decode_page_token(token: str) -> tuple[datetime, str]:
    """The (created_at, payment id) a token of `encode_page_token` carries, or
    InvalidArgument: the token comes from the client, so anything may be in it
    (nesting deep enough to exhaust the JSON decoder's recursion, NUL bytes)."""
    try:
        if len(token) > MAX_PAGE_TOKEN_LENGTH:
            raise ValueError(token)
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created_at = datetime.fromisoformat(data["t"])
        payment_id = data["i"]
        if not isinstance(payment_id, str) or created_at.tzinfo is None:
            raise ValueError(token)
        if payment_id_problem(payment_id):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise InvalidArgument(
            "invalid page token",
            [FieldViolation("page_token", "use the next_page_token of the previous page")],
        ) from None
    return created_at, payment_id
