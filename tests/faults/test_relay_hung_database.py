"""A relay whose database link hangs stops beating, whoever met the hang first.

The relay's loop and the outbox backlog gauge (counted at each /metrics
scrape) both query the relay's database. When the link hangs (a TcpProxy that
holds every byte), a scrape may be the first to reach it. The scrape gives up
on its query after its bound and the query stays hung; if it had taken the
loop's idle connection, the loop would open a new one, time out connecting,
back off and beat again: a loop that never turns looking alive, and
SwitchyardLoopStuck silent (tests/faults/test_alerts_fire.py). The scrape has a
connection of its own, so the loop blocks on its own one and its heartbeat ages.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table
from sqlalchemy.engine import make_url
from switchyard_kit import Database, Heartbeat, watch_outbox_backlog
from switchyard_kit.events import OutboxRelay, RedisStreamPublisher, SqlOutbox

from faults.proxy import TcpProxy

pytestmark = pytest.mark.postgres
HUNG_SECONDS = 20.0
# Past the engine's connect timeout (3 s), after which a loop that had to open
# a new connection would have failed, backed off and beaten again.
WATCH_SECONDS = 7.0


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    yield proxy
    proxy.stop()


def test_a_scrape_that_meets_the_hang_first_leaves_the_loop_stuck_on_its_own_connection(
    create_postgres_database, redis_url, proxy
):
    url = make_url(create_postgres_database("relayhang")).set(port=proxy.port)
    database = Database(url.render_as_string(hide_password=False), pool_size=3, max_overflow=3)
    table = Table(
        "outbox",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=True),
        Column("sent_at", DateTime(timezone=True), nullable=True),
    )
    table.metadata.create_all(database.engine)
    relay = OutboxRelay(
        database, SqlOutbox(table), RedisStreamPublisher(redis_url), poll_interval_seconds=0.1
    )
    watch = f"hung-link-{uuid.uuid4().hex[:8]}"
    watch_outbox_backlog(database.engine, name=watch, timeout_seconds=0.5)
    assert relay.step() == relay.poll_interval  # the loop has used its connection
    assert f'outbox_unsent_events{{outbox="{watch}"}} 0.0' in generate_latest(REGISTRY).decode()

    proxy.delay_seconds = HUNG_SECONDS
    generate_latest(REGISTRY)  # the scrape meets the hang first; it answers, its query hangs
    heartbeat = Heartbeat(max_age_seconds=5)
    stop = threading.Event()
    loop = threading.Thread(target=relay.run, args=(stop,), kwargs={"heartbeat": heartbeat})
    loop.start()
    try:
        time.sleep(WATCH_SECONDS)
        age = heartbeat.age()
        failures = relay.failures
    finally:
        stop.set()
        proxy.stop()  # resets the hung connections: the loop's query fails and it exits
        loop.join(HUNG_SECONDS * 3)
        database.dispose()
    assert failures == 0, "the loop opened a connection of its own and failed connecting"
    assert age >= WATCH_SECONDS - 1, f"the loop beat {age:.1f}s ago while its database hung"
    assert not loop.is_alive()
