"""Payments, refunds and top-ups, with the payment state machine."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from switchyard_kit import FailedPrecondition, FieldViolation, InvalidArgument
from switchyard_kit.sku import sku_problem
from switchyard_kit.text import text_problem

from payment_service.domain import errors
from payment_service.domain.money import MAX_AMOUNT, amount_problem, currency_problem

MAX_ITEMS = 100
MAX_QUANTITY = 1_000_000
MAX_DESCRIPTION_LENGTH = 500
# Matched whole (fullmatch): an anchored `^...$` with `match` accepts "shop\n".
MERCHANT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


# The only moves a payment can make. Anything else is a bug or a bad request.
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED}),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset(
        {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
    ),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}

REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})


class InvalidTransition(FailedPrecondition):
    default_reason = errors.PAYMENT_NOT_REFUNDABLE


@dataclass(frozen=True)
class LineItem:
    sku: str
    quantity: int
    unit_amount: int

    @property
    def total(self) -> int:
        return self.quantity * self.unit_amount


@dataclass
class Payment:
    id: str
    user_id: str
    merchant_id: str
    amount: int
    currency: str
    items: tuple[LineItem, ...]
    description: str
    created_at: datetime
    updated_at: datetime
    status: PaymentStatus = PaymentStatus.PENDING
    failure_reason: str = ""
    refunded_amount: int = 0

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount if self.status in REFUNDABLE else 0

    def _move(self, target: PaymentStatus, now: datetime) -> None:
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"a {self.status.value} payment cannot become {target.value}")
        self.status = target
        self.updated_at = now

    def succeed(self, now: datetime) -> None:
        self._move(PaymentStatus.SUCCEEDED, now)

    def fail(self, reason: str, now: datetime) -> None:
        self._move(PaymentStatus.FAILED, now)
        self.failure_reason = reason

    def refund(self, amount: int, now: datetime) -> None:
        """Take `amount` (already validated positive) off what is left to refund."""
        if self.status not in REFUNDABLE:
            raise InvalidTransition(f"a {self.status.value} payment cannot be refunded")
        if amount > self.amount - self.refunded_amount:
            # What is left depends on the refunds before: a refusal of the
            # payment's state, not of the request (the same amount was fine before).
            raise FailedPrecondition(
                "refund exceeds the payment: at most "
                f"{self.amount - self.refunded_amount} is left to refund",
                reason=errors.REFUND_EXCEEDS_PAYMENT,
            )
        refunded = self.refunded_amount + amount
        target = (
            PaymentStatus.REFUNDED if refunded == self.amount else PaymentStatus.PARTIALLY_REFUNDED
        )
        self._move(target, now)
        self.refunded_amount = refunded


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    user_id: str
    amount: int
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class TopUp:
    id: str
    user_id: str
    amount: int
    currency: str
    balance: int
    created_at: datetime


@dataclass(frozen=True)
class RefundResult:
    refund: Refund
    payment: Payment


# --- commands ---------------------------------------------------------------


@dataclass(frozen=True)
class TopUpWallet:
    user_id: str
    amount: int
    currency: str

    def validate(self) -> None:
        _raise_if(_money_violations(self.amount, self.currency), "invalid top-up")


@dataclass(frozen=True)
class CreatePayment:
    user_id: str
    amount: int
    currency: str
    merchant_id: str
    items: tuple[LineItem, ...] = ()
    description: str = ""

    def validate(self) -> None:
        violations = _money_violations(self.amount, self.currency)
        if not MERCHANT_ID.fullmatch(self.merchant_id):
            violations.append(
                FieldViolation("merchant_id", "required: 1 to 64 characters of [A-Za-z0-9._-]")
            )
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            violations.append(
                FieldViolation("description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
            )
        elif problem := text_problem(self.description, multiline=False):
            # One line: it is shown in payment lists and on statements.
            violations.append(FieldViolation("description", problem))
        if len(self.items) > MAX_ITEMS:
            violations.append(FieldViolation("items", f"at most {MAX_ITEMS} items"))
        for index, item in enumerate(self.items):
            violations.extend(_item_violations(index, item))
        if self.items and not any(v.field.startswith("items") for v in violations):
            total = sum(item.total for item in self.items)
            if total != self.amount:
                violations.append(
                    FieldViolation(
                        "amount",
                        f"must equal the sum of the items' quantity * unit_amount ({total})",
                    )
                )
        _raise_if(violations, "invalid payment")


@dataclass(frozen=True)
class RefundPayment:
    user_id: str
    payment_id: str
    amount: int | None = None
    currency: str = ""

    def validate(self) -> None:
        violations: list[FieldViolation] = []
        if problem := payment_id_problem(self.payment_id):
            violations.append(FieldViolation("payment_id", problem))
        if self.amount is not None and (problem := amount_problem(self.amount)):
            violations.append(FieldViolation("amount", problem))
        if self.currency and (problem := currency_problem(self.currency)):
            violations.append(FieldViolation("currency", problem))
        _raise_if(violations, "invalid refund")


def payment_id_problem(value: str) -> str | None:
    """None for a payment id in the form this service gives them out (a UUID,
    lowercase, 8-4-4-4-12), else why not. Anything else names no payment, and
    is refused before it reaches storage (PostgreSQL refuses NUL, for one)."""
    if not value:
        return "required"
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        return "must be a payment id (a UUID)"
    if canonical != value:
        return "must be a payment id (a UUID)"
    return None


def _money_violations(amount: int, currency: str) -> list[FieldViolation]:
    violations = []
    if problem := amount_problem(amount):
        violations.append(FieldViolation("amount", problem))
    if problem := currency_problem(currency):
        violations.append(FieldViolation("currency", problem))
    return violations


def _item_violations(index: int, item: LineItem) -> list[FieldViolation]:
    prefix = f"items[{index}]"
    violations = []
    if problem := sku_problem(item.sku):
        violations.append(FieldViolation(f"{prefix}.sku", problem))
    if not 1 <= item.quantity <= MAX_QUANTITY:
        violations.append(FieldViolation(f"{prefix}.quantity", f"must be 1 to {MAX_QUANTITY}"))
    if problem := amount_problem(item.unit_amount):
        violations.append(FieldViolation(f"{prefix}.unit_amount", problem))
    elif item.total > MAX_AMOUNT:
        violations.append(
            FieldViolation(f"{prefix}.unit_amount", f"quantity * unit_amount exceeds {MAX_AMOUNT}")
        )
    return violations


def _raise_if(violations: list[FieldViolation], message: str) -> None:
    if violations:
        raise InvalidArgument(message, violations)


# --- domain events: what the outbox publishes --------------------------------


@dataclass(frozen=True)
class WalletToppedUp:
    top_up: TopUp


@dataclass(frozen=True)
class PaymentSucceeded:
    payment: Payment = field()

    def __post_init__(self) -> None:
        # The event keeps the payment as it was when it succeeded.
        object.__setattr__(self, "payment", replace(self.payment))


@dataclass(frozen=True)
class PaymentRefunded:
    refund: Refund
    payment: Payment

    def __post_init__(self) -> None:
        object.__setattr__(self, "payment", replace(self.payment))


DomainEvent = WalletToppedUp | PaymentSucceeded | PaymentRefunded
