"""The profile unit of work on SQLAlchemy (the protocols in service_layer.ports)."""

from __future__ import annotations

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
    """Writes on the primary; read-only units through `Database.read_session` (the
    replica when PROFILE_DATABASE_READ_URL is set and it may serve the read: see
    switchyard_kit.SqlAlchemyUnitOfWork for `for_user`, read-your-writes).

    On SQLite a writing unit starts with BEGIN IMMEDIATE: it takes the write lock
    first (waiting up to the busy timeout) instead of failing with "database is
    locked" when a read transaction later tries to become a write one.
    """

    profiles: ProfileRepository

    def _start(self, session: Session) -> None:
        if not self.read_only and session.get_bind().dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        self.profiles = SqlAlchemyProfileRepository(session)


def sqlalchemy_unit_of_work_factory(database: Database) -> UnitOfWorkFactory:
    """The factory handlers use in production."""

    def make(*, read_only: bool = False, for_user: str | None = None) -> AbstractUnitOfWork:
        return SqlAlchemyProfileUnitOfWork(database, read_only=read_only, for_user=for_user)

    return make
