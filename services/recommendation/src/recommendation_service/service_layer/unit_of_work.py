"""The unit of work over the recommendation database: one transaction per event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from recommendation_service.adapters.repository import SqlModelRepository


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would defer BEGIN on its own; the listener below emits it instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    # Take the write lock at BEGIN: one event's read-modify-write of a user's
    # history is then whole on SQLite, as the row lock makes it on PostgreSQL.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def build_database(
    url: str,
    read_url: str | None = None,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: float = 2.0,
) -> Database:
    """The kit's Database, with SQLite transactions that lock for writing at BEGIN.

    On SQLite the reads get an engine of their own (same file, plain deferred
    transactions), so scoring never waits for the write lock.
    """
    if read_url is None and url.startswith("sqlite"):
        read_url = url
    database = Database(
        url, read_url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
    )
    if database.engine.dialect.name == "sqlite":
        event.listen(database.engine, "connect", _sqlite_manual_transactions)
        event.listen(database.engine, "begin", _sqlite_begin_immediate)
    return database


class ModelUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.model...; uow.commit()` on the primary."""

    model: SqlModelRepository

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)


class ReadUnitOfWork(SqlAlchemyUnitOfWork):
    """Reads for scoring, on the replica when one is configured (never committed)."""

    model: SqlModelRepository

    def __enter__(self) -> ReadUnitOfWork:
        self.session = self.database.read_session()
        self._start(self.session)
        return self

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)
