"""SQLAlchemy engines, sessions, the unit of work and the UTC column type every
service builds on."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from sqlalchemy import DateTime, Dialect, Engine, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from switchyard_kit._metrics import track_pool
from switchyard_kit._settings import ServiceSettings
from switchyard_kit._telemetry import tracing_enabled

logger = logging.getLogger("switchyard.db")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime column on every backend.

    The schema is `DateTime(timezone=True)` (PostgreSQL `timestamptz`), so it
    needs no migration where a table used that. SQLite keeps no zone: values
    are written in UTC and given their zone back when read; a naive datetime is
    refused on write, since its zone is unknown.

    Example::

        Column("created_at", UtcDateTime(), nullable=False)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: UtcDateTime stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers run beside the one writer; busy_timeout waits for the
    # write lock instead of failing at once; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _trace(engine: Engine) -> Engine:
    """SQL spans for every statement of `engine` (OpenTelemetry's SQLAlchemy
    tracer). Hooked per engine rather than with SQLAlchemyInstrumentor, whose
    global patching imports sqlalchemy.ext.asyncio (greenlet) and refuses
    SQLAlchemy 2.1 by its declared range; the engine events are the same.
    Not hooked at all when tracing is disabled (OTEL_SDK_DISABLED)."""
    if not tracing_enabled():
        return engine
    EngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer("switchyard_kit.database"),
        engine,
        otel_metrics.get_meter("switchyard_kit.database").create_up_down_counter(
            "db.client.connections.usage", unit="{connection}"
        ),
    )
    return engine


def create_database_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: float = 2.0,
    connect_timeout: float = 3.0,
) -> Engine:
    """An engine with explicit pool settings; SQLite files get their folder and pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return _trace(engine)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # A connection a PgBouncer restart or a failover broke is found at
        # checkout and replaced, not handed to a request
        # (services/payment/tests/integration/test_pgbouncer.py).
        pool_pre_ping=True,
        # Old connections are replaced too, so a database (or PgBouncer)
        # address moved behind the same name reaches every pod within 30 min.
        pool_recycle=1800,
        connect_args={"connect_timeout": max(1, int(connect_timeout))},
    )
    return _trace(engine)


def _sqlite_manual_transactions(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # pysqlite would defer BEGIN on its own; `_sqlite_begin_immediate` emits it instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    # Take the write lock at BEGIN: SQLite then runs each writing transaction
    # whole, as row locks make it on PostgreSQL, instead of failing with
    # "database is locked" when two transactions upgrade their read locks.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """A service's database: a primary engine and an optional read replica.

    `sqlite_immediate_writes=True` makes every transaction on a SQLite primary
    take the write lock at BEGIN (read-modify-write stays whole) and gives the
    reads an engine of their own on the same file, so they never wait for it.

    Example::

        database = Database(settings.database_url, settings.database_read_url)
        with database.session() as session, session.begin():
            session.add(row)
    """

    def __init__(
        self,
        url: str,
        read_url: str | None = None,
        *,
        pool_size: int = 10,
        max_overflow: int = 5,
        pool_timeout: float = 2.0,
        sqlite_immediate_writes: bool = False,
    ) -> None:
        self.url = url
        on_sqlite = make_url(url).get_backend_name() == "sqlite"
        if sqlite_immediate_writes and on_sqlite and read_url is None:
            read_url = url
        self.engine = create_database_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
        )
        self.read_engine = (
            create_database_engine(
                read_url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
            )
            if read_url
            else self.engine
        )
        if sqlite_immediate_writes and on_sqlite:
            event.listen(self.engine, "connect", _sqlite_manual_transactions)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        track_pool(self.engine, "primary")
        if self.read_engine is not self.engine:
            track_pool(self.read_engine, "replica")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @classmethod
    def for_service(
        cls, settings: ServiceSettings, *, sqlite_immediate_writes: bool = False
    ) -> Database:
        """The database a service's settings name, with their pool sizes."""
        return cls(
            settings.database_url,
            settings.database_read_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            sqlite_immediate_writes=sqlite_immediate_writes,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session on the primary (reads that must see the latest write go here too)."""
        return self._sessions()

    def read_session(self) -> Session:
        """A session on the replica when one is configured, else on the primary."""
        return self._read_sessions()

    def ping(self) -> bool:
        """True when the primary answers a trivial query."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            logger.warning("database ping failed", extra={"error": type(exc).__name__})
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


class SqlAlchemyUnitOfWork:
    """One business transaction: `with uow: ...; uow.commit()`.

    Leaving the block without commit rolls back. Services subclass it and
    attach their repositories in `_start(session)`.
    """

    session: Session

    def __init__(self, database: Database) -> None:
        self.database = database

    def _start(self, session: Session) -> None:
        """Attach repositories to the new session."""

    def __enter__(self) -> Self:
        self.session = self.database.session()
        self._start(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
