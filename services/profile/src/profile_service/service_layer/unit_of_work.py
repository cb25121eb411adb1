"""The unit of work the handlers see: one business transaction on the primary, or a
read on the replica. adapters.unit_of_work implements it on SQLAlchemy."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from profile_service.service_layer.ports import ProfileRepository


class AbstractUnitOfWork(Protocol):
    """`with uow: ...; uow.commit()`; leaving without commit rolls back."""

    profiles: ProfileRepository

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Makes a unit of work; `read_only=True` may read a replica and never commits."""

    def __call__(self, *, read_only: bool = False) -> AbstractUnitOfWork: ...
