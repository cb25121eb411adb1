"""The unit-of-work shape every service layer sees: `with uow: ...; uow.commit()`.

Each service's own protocol extends it with its repositories, e.g.::

    class UnitOfWork(Transaction, Protocol):
        @property
        def payments(self) -> PaymentStore: ...

Typing only (standard library), so service layers may import it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class Transaction(Protocol):
    """One transaction: leaving the `with` block without `commit()` rolls back."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
