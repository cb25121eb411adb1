"""The payment service's unit of work: one database transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from payment_service.adapters.repository import PaymentRepository


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would defer BEGIN; we emit it ourselves.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    # Take the write lock at BEGIN: SQLite then serialises writers whole,
    # which is what keeps wallets and keys consistent on the embedded path.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def build_database(
    url: str,
    read_url: str | None = None,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: float = 2.0,
) -> Database:
    """The kit's Database, with SQLite transactions that lock for writing at BEGIN."""
    database = Database(
        url, read_url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
    )
    for engine in {database.engine, database.read_engine}:
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_manual_transactions)
            event.listen(engine, "begin", _sqlite_begin_immediate)
    return database


class PaymentUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.payments...; uow.commit()`."""

    payments: PaymentRepository

    def _start(self, session: Session) -> None:
        self.payments = PaymentRepository(session)
