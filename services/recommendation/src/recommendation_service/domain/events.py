"""What the model learns from: purchases and refunds, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from switchyard_kit.sku import sku_problem


class MalformedEvent(ValueError):
    """An event that can never be applied (bad payload): it ends in the dead letters."""


@dataclass(frozen=True)
class PurchaseRecorded:
    """A payment succeeded: `user_id` bought `items` (sku -> quantity) at `occurred_at`."""

    payment_id: str
    user_id: str
    occurred_at: datetime
    items: dict[str, int]


@dataclass(frozen=True)
class RefundRecorded:
    """A payment is now refunded by `refunded_fraction` in all (0 < f <= 1).

    Refunds are by amount, not by item, so a partial refund takes back that
    fraction of every item of the payment; a full refund takes back all.
    """

    payment_id: str
    user_id: str
    occurred_at: datetime
    refunded_fraction: float


def checked_sku(sku: str) -> str:
    """The SKU, if it follows the rule payment enforces at its API; an event
    with any other is never learned (it would be shown in others' lists)."""
    if problem := sku_problem(sku):
        raise MalformedEvent(f"sku {problem}")
    return sku


def checked_id(name: str, value: str) -> str:
    if not value or len(value) > 64:
        raise MalformedEvent(f"{name} must be 1 to 64 characters")
    return value
