"""A scrape never hangs on the outbox backlog's query: with the outbox table
locked on the real PostgreSQL (the count waits), /metrics answers within the
bound, without the backlog gauges but with everything else (the loop
heartbeat an alert reads); the gauges come back once the query can run."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import create_engine, text
from switchyard_kit import watch_outbox_backlog

pytestmark = pytest.mark.postgres
LOCK_SECONDS = 8.0


def test_a_hung_backlog_query_leaves_the_scrape_answering(create_postgres_database):
    url = create_postgres_database("backlog")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE outbox (id serial PRIMARY KEY,"
                " created_at timestamptz, sent_at timestamptz)"
            )
        )
        connection.execute(text("INSERT INTO outbox (created_at) VALUES (now())"))
    watch_outbox_backlog(engine, name="hung-test", timeout_seconds=0.5)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        # Held for LOCK_SECONDS at most: without the bound the scrape waits
        # that long, and the assertion below fails instead of the test hanging.
        with engine.connect() as locker, locker.begin():
            locker.execute(text("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(LOCK_SECONDS)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        exposition = generate_latest(REGISTRY).decode()
        assert time.monotonic() - started < LOCK_SECONDS / 2
        assert 'outbox_unsent_events{outbox="hung-test"}' not in exposition
        assert "db_pool_size" in exposition  # the rest of the scrape is there
    finally:
        release.set()
        holder.join()
    # The lock is gone: the waiting query finishes, a later scrape has the gauge.
    deadline = time.monotonic() + 10
    while 'outbox_unsent_events{outbox="hung-test"} 1.0' not in generate_latest(REGISTRY).decode():
        assert time.monotonic() < deadline, "the backlog gauge did not come back"
        time.sleep(0.2)
    engine.dispose()
