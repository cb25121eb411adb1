"""The recommendation jobs: cleanup-processed-events (database) and
trim-dead-letters (the worker's Redis dead-letter stream)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import redis
from recommendation_service.adapters import tables as t
from recommendation_service.adapters.retention import SqlEventRetention
from recommendation_service.entrypoints.app import cleanup_processed_events_from
from recommendation_service.service_layer.retention import EventRetention, forget_old_events
from sqlalchemy import insert, select
from switchyard_kit.events import dead_letter_stream_name
from switchyard_kit.retention import RetentionBound

NOW = datetime.now(UTC)


def _fill(database, *, old: int, recent: int) -> None:
    ages = [40.0] * old + [5.0] * recent
    with database.session() as session, session.begin():
        for age in ages:
            at = NOW - timedelta(days=age)
            event_id = str(uuid.uuid4())
            session.execute(
                insert(t.processed_events).values(
                    event_id=event_id, event_type="PurchaseRecorded", processed_at=at
                )
            )
            session.execute(
                insert(t.dead_letters).values(
                    event_id=event_id,
                    event_type="x",
                    reason="failed 3 deliveries",
                    payload=b"",
                    created_at=at,
                )
            )


def _ages(database, column) -> list[float]:
    with database.session() as session:
        rows = session.execute(select(column)).scalars().all()
    return sorted(round((NOW - at).total_seconds() / 86_400) for at in rows)


def test_old_processed_ids_and_dead_letters_go_recent_ones_stay(database, settings):
    _fill(database, old=3, recent=2)
    assert cleanup_processed_events_from(database, settings) == (3, 3)
    assert _ages(database, t.processed_events.c.processed_at) == [5, 5]
    assert _ages(database, t.dead_letters.c.created_at) == [5, 5]
    assert cleanup_processed_events_from(database, settings) == (0, 0)


def test_one_run_deletes_at_most_its_bound(database):
    _fill(database, old=7, recent=1)
    store = SqlEventRetention(database, RetentionBound(batch_size=2, max_rows=4))
    runs = [forget_old_events(store, EventRetention()) for _ in range(3)]
    assert runs == [(4, 4), (3, 3), (0, 0)]


def test_trim_dead_letters_command(redis_url, database_url):
    group = f"rec-{uuid.uuid4().hex[:8]}"
    stream = dead_letter_stream_name("payments", group)
    client = redis.Redis.from_url(redis_url)
    for age_days, sequence in [(31, 0), (31, 1), (1, 0)]:
        ms = int((NOW - timedelta(days=age_days)).timestamp() * 1000)
        client.xadd(stream, {"event": b"x"}, id=f"{ms}-{sequence}")
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RECOMMENDATION_DATABASE_URL": database_url,
        "RECOMMENDATION_WORKER_GROUP": group,
    }
    try:
        outputs = [
            subprocess.run(
                [sys.executable, "-m", "recommendation_service", "trim-dead-letters"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            for _ in range(2)
        ]
        assert "deleted 2 dead letter(s)" in outputs[0]
        assert "deleted 0 dead letter(s)" in outputs[1]
        assert client.xlen(stream) == 1
    finally:
        client.delete(stream)
        client.close()
