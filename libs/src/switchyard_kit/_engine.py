"""The SQLAlchemy engine every database connection of the kit goes through:
explicit pool settings, a connect timeout, stale connections replaced at
checkout, SQLite's pragmas, and SQL spans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from switchyard_kit._telemetry import tracing_enabled


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
