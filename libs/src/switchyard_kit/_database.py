"""SQLAlchemy engines, sessions, the unit of work and the UTC column type every
service builds on."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import DateTime, Dialect, TypeDecorator, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from switchyard_kit._cache import RedisCache
from switchyard_kit._engine import create_database_engine
from switchyard_kit._metrics import database_label, track_pool
from switchyard_kit._replica import REPLICA_DOWN, ReplicaRouter, WriteMarkStore
from switchyard_kit._settings import ServiceSettings

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


def _sqlite_manual_transactions(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # pysqlite would defer BEGIN on its own; `_sqlite_begin_immediate` emits it instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    # Take the write lock at BEGIN: SQLite then runs each writing transaction
    # whole, as row locks make it on PostgreSQL, instead of failing with
    # "database is locked" when two transactions upgrade their read locks.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _marks_namespace(settings: ServiceSettings) -> str:
    """The write marks' Redis prefix: per primary server and database, since WAL
    positions of two servers (shards) are not comparable."""
    primary = make_url(settings.database_url)
    where = f"{primary.host}:{primary.port}/{primary.database}"
    return f"{settings.service_name}.replica.{hashlib.sha256(where.encode()).hexdigest()[:12]}"


class Database:
    """A service's database: a primary engine and an optional read replica.

    `sqlite_immediate_writes=True` makes every transaction on a SQLite primary
    take the write lock at BEGIN (read-modify-write stays whole) and gives the
    reads an engine of their own on the same file, so they never wait for it.

    When both are PostgreSQL, reads through `read_session` are routed by a
    `ReplicaRouter` (switchyard_kit._replica): to the replica only while it
    answers and lags less than `max_replica_lag_seconds`, and, for
    `read_session(after_writes_of=key)`, only once it has replayed the last
    write recorded with `remember_write(key)` (the unit of work does that on
    commit). Any other pair (SQLite, one URL) reads as before, unrouted.

    Example::

        database = Database(settings.database_url, settings.database_read_url)
        with database.session() as session, session.begin():
            session.add(row)
        database.remember_write(user_id)
        with database.read_session(after_writes_of=user_id) as session:
            ...  # sees the row, from the replica once it has replayed it
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
        max_replica_lag_seconds: float = 5.0,
        replica_probe_interval_seconds: float = 0.5,
        write_marks: WriteMarkStore | None = None,
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
        self.replica: ReplicaRouter | None = None
        if (
            self.read_engine is not self.engine
            and self.engine.dialect.name == "postgresql"
            and self.read_engine.dialect.name == "postgresql"
        ):
            self.replica = ReplicaRouter(
                self.engine,
                self.read_engine,
                label=database_label(url),
                max_lag_seconds=max_replica_lag_seconds,
                probe_interval_seconds=replica_probe_interval_seconds,
                marks=write_marks,
            )

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
            max_replica_lag_seconds=settings.replica_max_lag_seconds,
            replica_probe_interval_seconds=settings.replica_probe_interval_seconds,
            # Shared by every pod of the service through Redis; without Redis
            # (one process) the router's in-process marks are all there is.
            write_marks=RedisCache(_marks_namespace(settings), settings.redis_url)
            if settings.redis_url and settings.database_read_url
            else None,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session on the primary (reads that must see the latest write go here too)."""
        return self._sessions()

    def read_session(self, after_writes_of: str | None = None) -> Session:
        """A session for a read that may be a little stale: on the replica when
        one is configured and may serve it (see the class docstring), else on
        the primary. `after_writes_of`: the key (a user id) whose own writes
        this read must see."""
        if self.replica is None:
            return self._read_sessions()
        refused_because = self.replica.refusal(after_writes_of)
        if refused_because is None:
            session = self._read_sessions()
            try:
                session.connection()  # checks the replica out now (pool pre-ping)
            except OperationalError:
                # Down since the last probe: this read and the next ones go to the primary.
                session.close()
                self.replica.replica_failed()
                refused_because = REPLICA_DOWN
            else:
                self.replica.count_read(None)
                return session
        self.replica.count_read(refused_because)
        return self._sessions()

    def remember_write(self, key: str) -> None:
        """After a committed write of `key`: its reads (`after_writes_of=key`)
        stay on the primary until the replica has replayed it. A no-op
        without a routed replica."""
        if self.replica is not None:
            self.replica.remember_write(key)

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
        if self.replica is not None:
            self.replica.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


class SqlAlchemyUnitOfWork:
    """One business transaction: `with uow: ...; uow.commit()`.

    Leaving the block without commit rolls back. Services subclass it and
    attach their repositories in `_start(session)`.

    `for_user` names whose data the unit is about. A writing unit records,
    on commit, that the user's data changed (`Database.remember_write`); a
    `read_only=True` unit reads with `Database.read_session(after_writes_of=for_user)`,
    so it may read a replica that lags, but never one that has not yet
    replayed that user's last write. A read-only unit cannot commit.
    """

    session: Session

    def __init__(
        self, database: Database, *, read_only: bool = False, for_user: str | None = None
    ) -> None:
        self.database = database
        self.read_only = read_only
        self.for_user = for_user

    def _start(self, session: Session) -> None:
        """Attach repositories to the new session."""

    def __enter__(self) -> Self:
        if self.read_only:
            self.session = self.database.read_session(after_writes_of=self.for_user)
        else:
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
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.session.commit()
        if self.for_user is not None:
            self.database.remember_write(self.for_user)

    def rollback(self) -> None:
        self.session.rollback()
