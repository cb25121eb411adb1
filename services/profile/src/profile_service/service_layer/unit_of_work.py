"""The unit of work the handlers see: one business transaction on the primary, or a
read on the replica. adapters.unit_of_work implements it on SQLAlchemy."""

from __future__ import annotations

from typing import Protocol

from switchyard_kit import Transaction

from profile_service.service_layer.ports import ProfileRepository


class AbstractUnitOfWork(Transaction, Protocol):
    """`with uow: ...; uow.commit()`; leaving without commit rolls back."""

    profiles: ProfileRepository


class UnitOfWorkFactory(Protocol):
    """Makes a unit of work; `read_only=True` may read a replica and never commits."""

    def __call__(self, *, read_only: bool = False) -> AbstractUnitOfWork: ...
