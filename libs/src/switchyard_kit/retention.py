"""Retention jobs' shared mechanics: delete what is past its keep-until, in batches.

Every scheduled clean-up (`python -m <service> <job>`, a CronJob in k8s, the
`make run` scheduler locally) has the same needs: it must be idempotent (a
second run finds nothing to do), bounded per run (at most `max_rows` per
table, in short transactions of `batch_size`, so it never holds locks for
long or fills the WAL at once; what is left goes on the next run), and say
what it did. Services say *what* expires (a table and a condition); this
module does the deleting.

Example::

    from switchyard_kit.retention import RetentionBound, delete_in_batches

    bound = RetentionBound(batch_size=1000, max_rows=100_000)
    deleted = delete_in_batches(database, tables.sessions,
                                tables.sessions.c.expires_at < cutoff, bound,
                                dependents=[tables.refresh_tokens.c.session_id])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.schema import Column

from switchyard_kit._clock import utc_now
from switchyard_kit._database import Database
from switchyard_kit.events._envelope import dead_letter_stream_name

__all__ = ["RetentionBound", "delete_in_batches", "trim_dead_letters", "trim_stream_before"]

logger = logging.getLogger("switchyard.retention")


@dataclass(frozen=True)
class RetentionBound:
    """How much one run may delete: `batch_size` per transaction, `max_rows` in all."""

    batch_size: int = 1000
    max_rows: int = 100_000

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_rows < 1:
            raise ValueError("batch_size and max_rows must be positive")

    def next_batch(self, done: int) -> int:
        """The size of the next batch after `done` rows (0: the run is over)."""
        return min(self.batch_size, self.max_rows - done)


def delete_in_batches(
    database: Database,
    table: Table,
    condition: ColumnElement[bool],
    bound: RetentionBound,
    *,
    dependents: Sequence[Column[str] | Column[int]] = (),
) -> int:
    """Delete the rows of `table` matching `condition`, oldest batches first, at
    most `bound.max_rows` of them in transactions of `bound.batch_size`; how many went.

    `table` needs a one-column primary key. `dependents` are columns of other
    tables that reference it (child rows): their rows go in the same
    transaction, first, so no foreign key depends on the database's cascade
    (SQLite enforces none without the pragma). Each batch re-checks
    `condition` in its DELETE, so a row that stopped matching meanwhile stays.
    """
    (key,) = table.primary_key.columns
    total = 0
    while (size := bound.next_batch(total)) > 0:
        with database.session() as session, session.begin():
            ids = session.execute(select(key).where(condition).limit(size)).scalars().all()
            if not ids:
                break
            for column in dependents:
                session.execute(delete(column.table).where(column.in_(ids)))
            session.execute(delete(table).where(key.in_(ids), condition))
        total += len(ids)
        if len(ids) < size:
            break
    logger.info(
        "retention: deleted expired rows",
        extra={"table": table.name, "deleted": total, "bounded": total >= bound.max_rows},
    )
    return total


def trim_stream_before(
    client: redis.Redis, stream: str, cutoff: datetime, bound: RetentionBound
) -> int:
    """Delete the entries of Redis stream `stream` added before `cutoff`, at most
    `bound.max_rows` of them, `bound.batch_size` per round trip; how many went.

    A stream entry's id starts with the millisecond it was added, so the
    entries before `cutoff` are the range `- .. (<cutoff ms>-0` (XRANGE, then
    XDEL of those ids): exact, unlike XTRIM MINID ~, and bounded, unlike an
    exact XTRIM MINID, which has no LIMIT. `client` is a `redis.Redis`.
    """
    import redis  # noqa: PLC0415 - only the jobs that trim streams load the client

    if not isinstance(client, redis.Redis):
        raise TypeError("trim_stream_before needs a redis.Redis client")
    end = f"({int(cutoff.timestamp() * 1000)}-0"
    total = 0
    while (size := bound.next_batch(total)) > 0:
        entries: Any = client.xrange(stream, "-", end, count=size)
        if not entries:
            break
        client.xdel(stream, *(entry_id for entry_id, _fields in entries))
        total += len(entries)
        if len(entries) < size:
            break
    logger.info(
        "retention: trimmed stream entries",
        extra={"stream": stream, "deleted": total, "bounded": total >= bound.max_rows},
    )
    return total


def trim_dead_letters(
    redis_url: str,
    stream: str,
    group: str,
    *,
    retention_days: float,
    bound: RetentionBound,
    clock: Callable[[], datetime] = utc_now,
) -> int:
    """Forget what consumer group `group` dead-lettered on logical stream
    `stream` (`events.<stream>.dead-letter.<group>`) more than
    `retention_days` ago, within `bound`; how many entries went."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
    try:
        cutoff = clock() - timedelta(days=retention_days)
        return trim_stream_before(client, dead_letter_stream_name(stream, group), cutoff, bound)
    finally:
        client.close()
