"""Operator commands: reconciliation and the idempotency key clean-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from switchyard_kit import utc_now

from payment_service.service_layer.ports import LedgerAudit, UnitOfWork


@dataclass(frozen=True)
class Violation:
    check: str
    description: str
    samples: list[str]

    def __str__(self) -> str:
        return f"{self.check}: {self.description}; e.g. {', '.join(self.samples[:5])}"


def reconcile(audit: LedgerAudit) -> list[Violation]:
    """Every broken ledger invariant (empty when the books are right):

    - the ledger sums to zero per currency, and each transaction does;
    - no wallet balance is negative, now or at any point in its history;
    - stored wallet balances equal the sum of their entries;
    - refunds never exceed their payment and match its refunded amount;
    - payment statuses agree with their refunds; every succeeded payment and
      refund is booked exactly once, failed payments never;
    - every succeeded payment, refund and top-up has exactly one outbox event.
    """
    return [Violation(*failure) for failure in audit.failures()]


def cleanup_idempotency_keys(
    uow_factory: Callable[[], UnitOfWork],
    batch_size: int = 1000,
    clock: Callable[[], datetime] = utc_now,
    max_keys: int = 100_000,
) -> int:
    """Delete expired idempotency keys in transactions of `batch_size`, at most
    `max_keys` per run (the rest goes on the next run); how many went."""
    total = 0
    now = clock()
    while (size := min(batch_size, max_keys - total)) > 0:
        with uow_factory() as uow:
            deleted = uow.payments.delete_expired_keys(now, size)
            uow.commit()
        total += deleted
        if deleted < size:
            break
    return total
