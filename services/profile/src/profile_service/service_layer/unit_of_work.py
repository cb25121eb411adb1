"""Units of work: one business transaction on the primary, or a read on the replica."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import text
from sqlalchemy.orm import Session
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from profile_service.adapters.repository import ProfileRepository, SqlAlchemyProfileRepository


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


class SqlAlchemyProfileUnitOfWork(SqlAlchemyUnitOfWork):
    """Writes on the primary; read-only units on `Database.read_session()` (the replica
    when PROFILE_DATABASE_READ_URL is set).

    On SQLite a writing unit starts with BEGIN IMMEDIATE: it takes the write lock
    first (waiting up to the busy timeout) instead of failing with "database is
    locked" when a read transaction later tries to become a write one.
    """

    profiles: ProfileRepository

    def __init__(self, database: Database, *, read_only: bool = False) -> None:
        super().__init__(database)
        self.read_only = read_only

    def __enter__(self) -> Self:
        if not self.read_only:
            return super().__enter__()
        self.session = self.database.read_session()
        self._start(self.session)
        return self

    def _start(self, session: Session) -> None:
        if not self.read_only and session.get_bind().dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        self.profiles = SqlAlchemyProfileRepository(session)

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        super().commit()


def sqlalchemy_unit_of_work_factory(database: Database) -> UnitOfWorkFactory:
    """The factory handlers use in production."""

    def make(*, read_only: bool = False) -> AbstractUnitOfWork:
        return SqlAlchemyProfileUnitOfWork(database, read_only=read_only)

    return make
