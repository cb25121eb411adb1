"""Prometheus metrics shared by every process.

RED per RPC (the server interceptor), cache hits and misses (the caches),
database pool use (every `Database`), replica routing (a `Database` with a
streaming replica: where reads went, the replica's lag and state), and the
gauges a worker asks for by name: event-stream lag and pending entries of a consumer group
(`watch_stream_lag`), and unsent outbox rows (`watch_outbox_backlog`).
Gauges that need a query are computed when /metrics is scraped, never on a
request path, and within a bound: a database or Redis that hangs leaves its
gauges out of that scrape instead of hanging the scrape (and the process's
other metrics, the loop heartbeat among them, with it).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from switchyard_kit._engine import create_database_engine

logger = logging.getLogger("switchyard.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_SERVER_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache look-ups by outcome (hit, miss, error).",
    ["cache", "outcome"],
)

# Read routing of a Database with a streaming replica (switchyard_kit._replica).
REPLICA_READS = Counter(
    "db_replica_reads_total",
    "Reads that may use the replica, by the server that served them and why "
    "(fresh; replica_down, replica_lagging, unknown, not_yet_replayed).",
    ["database", "served_by", "reason"],
)
REPLICA_USABLE = Gauge(
    "db_replica_usable",
    "1 when the replica answers and lags less than the bound, else 0 (reads go to the primary).",
    ["database"],
)
REPLICA_LAG = Gauge(
    "db_replica_lag_seconds",
    "Age of the oldest WAL the replica has not replayed (0 when caught up), at the last probe.",
    ["database"],
)
REPLICA_STATE_CHANGES = Counter(
    "db_replica_state_changes_total",
    "Changes of the replica's routing state, by the new state (usable, down, lagging).",
    ["database", "state"],
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on `port` in a background thread; 0 disables it."""
    if port:
        start_http_server(port, addr=host)


def database_label(url: str) -> str:
    """A name for a database in metrics: its name or file stem, never credentials."""
    parsed = make_url(url)
    name = parsed.database or parsed.get_backend_name()
    return Path(name).stem if parsed.get_backend_name() == "sqlite" else name


@dataclass(frozen=True)
class _PoolEntry:
    database: str
    role: str
    engine: weakref.ref[Engine]


@dataclass(frozen=True)
class _StreamWatch:
    stream: str
    group: str
    client: redis.Redis


@dataclass
class _BacklogWatch:
    name: str
    count: Callable[[], tuple[int, float | None]]
    timeout_seconds: float = 0.5
    # One query at a time per watch, on a thread of its own: a scrape waits for
    # it at most timeout_seconds; a query still hung is waited on again by the
    # next scrape rather than joined by another.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="outbox-backlog")
    )
    running: Future[tuple[int, float | None]] | None = None

    def read(self) -> tuple[int, float | None]:
        if self.running is None or self.running.done():
            self.running = self.executor.submit(self.count)
        return self.running.result(timeout=self.timeout_seconds)


class _SwitchyardCollector(Collector):
    """Gauges computed at scrape time from what was registered with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: list[_PoolEntry] = []
        self._streams: list[_StreamWatch] = []
        self._backlogs: list[_BacklogWatch] = []

    def add_pool(self, entry: _PoolEntry) -> None:
        with self._lock:
            self._pools = [p for p in self._pools if p.engine() is not None]
            self._pools.append(entry)

    def add_stream(self, watch: _StreamWatch) -> None:
        with self._lock:
            self._streams.append(watch)

    def add_backlog(self, watch: _BacklogWatch) -> None:
        with self._lock:
            self._backlogs = [b for b in self._backlogs if b.name != watch.name]
            self._backlogs.append(watch)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            pools, streams, backlogs = list(self._pools), list(self._streams), list(self._backlogs)
        yield from self._collect_pools(pools)
        if streams:
            yield from self._collect_streams(streams)
        if backlogs:
            yield from self._collect_backlogs(backlogs)

    @staticmethod
    def _collect_pools(pools: list[_PoolEntry]) -> Iterator[Metric]:
        in_use = GaugeMetricFamily(
            "db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            labels=["database", "role"],
        )
        idle = GaugeMetricFamily(
            "db_pool_connections_idle",
            "Database connections idle in the pool.",
            labels=["database", "role"],
        )
        overflow = GaugeMetricFamily(
            "db_pool_overflow",
            "Connections open beyond the pool size (negative: pool not yet full).",
            labels=["database", "role"],
        )
        size = GaugeMetricFamily(
            "db_pool_size", "Configured pool size.", labels=["database", "role"]
        )
        for entry in pools:
            engine = entry.engine()
            if engine is None:
                continue
            pool: Any = engine.pool
            labels = [entry.database, entry.role]
            for family, attribute in (
                (in_use, "checkedout"),
                (idle, "checkedin"),
                (overflow, "overflow"),
                (size, "size"),
            ):
                reader = getattr(pool, attribute, None)
                if callable(reader):
                    family.add_metric(labels, float(reader()))
        yield from (in_use, idle, overflow, size)

    @staticmethod
    def _collect_streams(streams: list[_StreamWatch]) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "event_stream_lag",
            "Entries in the stream not yet delivered to the consumer group.",
            labels=["stream", "group"],
        )
        pending = GaugeMetricFamily(
            "event_stream_pending",
            "Entries delivered to the group but not yet acknowledged.",
            labels=["stream", "group"],
        )
        up = GaugeMetricFamily(
            "event_stream_up",
            "1 when the stream's group could be read at the last scrape.",
            labels=["stream", "group"],
        )
        for watch in streams:
            labels = [watch.stream, watch.group]
            try:
                groups: Any = watch.client.xinfo_groups(watch.stream)
            except redis.RedisError as exc:
                if "no such key" not in str(exc).lower():
                    up.add_metric(labels, 0.0)
                    continue
                groups = []
            info = next((g for g in groups if _text(g.get("name")) == watch.group), None)
            up.add_metric(labels, 1.0)
            if info is None:
                continue
            pending.add_metric(labels, float(info.get("pending") or 0))
            group_lag = info.get("lag")
            if group_lag is not None:
                lag.add_metric(labels, float(group_lag))
        yield from (lag, pending, up)

    @staticmethod
    def _collect_backlogs(backlogs: list[_BacklogWatch]) -> Iterator[Metric]:
        unsent = GaugeMetricFamily(
            "outbox_unsent_events",
            "Outbox rows committed but not yet published.",
            labels=["outbox"],
        )
        oldest = GaugeMetricFamily(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none).",
            labels=["outbox"],
        )
        for watch in backlogs:
            try:
                count, age = watch.read()
            except FutureTimeout:
                logger.warning(
                    "outbox backlog query too slow: left out of this scrape",
                    extra={"outbox": watch.name, "timeout_seconds": watch.timeout_seconds},
                )
                continue
            except Exception as exc:
                logger.warning(
                    "outbox backlog unreadable",
                    extra={"outbox": watch.name, "error": type(exc).__name__},
                )
                continue
            unsent.add_metric([watch.name], float(count))
            if age is not None:
                oldest.add_metric([watch.name], max(0.0, age))
        yield from (unsent, oldest)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_collector = _SwitchyardCollector()
REGISTRY.register(_collector)


def track_pool(engine: Engine, role: str = "primary", database: str | None = None) -> None:
    """Report `engine`'s pool (in use, idle, overflow, size) on /metrics.

    `Database` calls it for its engines; the engine is held weakly.
    """
    label = database or database_label(engine.url.render_as_string(hide_password=True))
    _collector.add_pool(_PoolEntry(label, role, weakref.ref(engine)))


def watch_stream_lag(
    redis_url: str, stream: str, group: str, *, timeout_seconds: float = 0.5
) -> None:
    """Report a consumer group's lag and pending entries on /metrics.

    `stream` is the full stream key (e.g. "events.payments"); read with
    XINFO GROUPS at each scrape. A consumer calls it once at start.

    Example::

        watch_stream_lag(settings.redis_url, consumer.stream, consumer.group)
    """
    client = redis.Redis.from_url(
        redis_url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
    )
    _collector.add_stream(_StreamWatch(stream, group, client))


def watch_outbox_backlog(
    engine: Engine,
    *,
    name: str = "outbox",
    table: str = "outbox",
    unsent_column: str = "sent_at",
    created_column: str | None = "created_at",
    timeout_seconds: float = 0.5,
) -> None:
    """Report unsent outbox rows (and the oldest one's age) on /metrics.

    Counted with one query at each scrape, waited for at most
    `timeout_seconds` (a slower one leaves the gauges out of that scrape);
    names are the caller's own constants, never user input.

    The query runs on a connection of its own to `engine`'s database, never
    one from `engine`'s pool: a query hung on a hung database link holds that
    connection, and were it the loop's idle one, the loop would open another,
    time out connecting and back off, beating its heartbeat: a stuck loop would
    look alive (tests/faults/test_relay_hung_database.py).

    Example::

        watch_outbox_backlog(database.engine)   # payment relay: outbox.sent_at IS NULL
    """
    for identifier in (table, unsent_column, created_column or "x"):
        if not identifier.replace("_", "").isalnum():
            raise ValueError(f"not a plain SQL identifier: {identifier!r}")
    oldest = f", min({created_column})" if created_column else ""
    query = text(f"SELECT count(*){oldest} FROM {table} WHERE {unsent_column} IS NULL")  # noqa: S608 - checked identifiers

    own_engine = create_database_engine(
        engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0
    )

    def count() -> tuple[int, float | None]:
        with own_engine.connect() as connection:
            row = connection.execute(query).one()
        age: float | None = None
        if created_column:
            age = 0.0 if row[1] is None else _age_seconds(row[1])
        return int(row[0]), age

    _collector.add_backlog(_BacklogWatch(name, count, timeout_seconds))


def _age_seconds(value: Any) -> float:
    from datetime import UTC, datetime  # noqa: PLC0415

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (datetime.now(UTC) - moment).total_seconds()
    return time.time() - float(value)
