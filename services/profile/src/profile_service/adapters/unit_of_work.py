"""The profile unit of work on SQLAlchemy (the protocols in service_layer.ports)."""

from __future__ import annotations

from typing import Self

from sqlalchemy import text
from sqlalchemy.orm import Session
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from profile_service.adapters.repository import SqlAlchemyProfileRepository
from profile_service.service_layer.ports import (
    AbstractUnitOfWork,
    ProfileRepository,
    UnitOfWorkFactory,
)


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
