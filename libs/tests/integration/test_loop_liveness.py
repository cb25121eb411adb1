"""The event loops beat from their own turn: idle loops keep beating (bounded
blocking reads, beating backoffs), a loop stuck in a call stops beating."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from google.protobuf import wrappers_pb2
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table
from switchyard.events.v1 import events_pb2
from switchyard_kit import Database, Heartbeat
from switchyard_kit.events import (
    EventConsumer,
    OutboxRelay,
    PublishError,
    RedisStreamPublisher,
    SqlOutbox,
    new_event,
)


def _wait(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def _run(target, *args, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def test_a_consumer_refuses_an_unbounded_block(redis_url):
    with pytest.raises(ValueError, match="block_seconds"):
        EventConsumer(
            redis_url, "s", group="g", consumer="c", handler=lambda e: None, block_seconds=0
        )


@pytest.mark.redis
def test_an_idle_consumer_beats_and_a_hung_handler_stops_the_beat(redis_url, stop):
    stream = f"test-{uuid.uuid4().hex}"
    release = threading.Event()
    handled: list[str] = []

    def handler(event: events_pb2.Event) -> None:
        release.wait(30)  # a call that does not return: the loop is stuck in it
        handled.append(event.id)

    consumer = EventConsumer(
        redis_url, stream, group="g", consumer="c1", handler=handler, block_seconds=0.2
    )
    heartbeat = Heartbeat(max_age_seconds=0.6)
    thread = _run(consumer.run, stop, heartbeat=heartbeat)
    _wait(heartbeat.alive)
    time.sleep(1.5)  # idle: nothing in the stream, each read blocks 0.2 s and returns
    assert heartbeat.alive()
    event = new_event(wrappers_pb2.StringValue(value="v"), stream=stream, key="k")
    RedisStreamPublisher(redis_url).publish([event])
    _wait(lambda: not heartbeat.alive())  # inside the handler: no beat
    release.set()
    _wait(heartbeat.alive)
    assert handled == [event.id]
    stop.set()
    thread.join(5)
    consumer.close()


@pytest.mark.redis
def test_a_consumer_keeps_beating_while_redis_is_unreachable(stop):
    consumer = EventConsumer(
        "redis://127.0.0.1:1/0", "s", group="g", consumer="c", handler=lambda e: None
    )
    heartbeat = Heartbeat(max_age_seconds=1.5)
    thread = _run(consumer.run, stop, heartbeat=heartbeat, error_backoff_seconds=3)
    _wait(heartbeat.alive)
    for _ in range(8):  # an outage is waited out, not a reason to be restarted
        time.sleep(0.5)
        assert heartbeat.alive()
    stop.set()
    thread.join(5)


class _GatedPublisher:
    """Fails while `failing`, blocks while `hang` is clear."""

    def __init__(self) -> None:
        self.failing = False
        self.hang = threading.Event()
        self.hang.set()
        self.published: list[str] = []

    def publish(self, events: Sequence[events_pb2.Event]) -> None:
        if self.failing:
            raise PublishError("down")
        self.hang.wait(30)
        self.published.extend(event.id for event in events)

    def close(self) -> None:
        return


def _outbox_database(tmp_path: Path) -> tuple[Database, Table]:
    metadata = MetaData()
    table = Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("payload", LargeBinary, nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
    )
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata.create_all(database.engine)
    return database, table


def test_a_relay_beats_while_backing_off_and_not_while_publishing_hangs(tmp_path, stop):
    database, table = _outbox_database(tmp_path)
    publisher = _GatedPublisher()
    publisher.failing = True
    relay = OutboxRelay(
        database, SqlOutbox(table), publisher, poll_interval_seconds=0.1, max_backoff_seconds=30
    )
    with database.session() as session, session.begin():
        event = new_event(wrappers_pb2.StringValue(value="v"), stream="s", key="k")
        session.execute(table.insert().values(payload=event.SerializeToString()))
    heartbeat = Heartbeat(max_age_seconds=1.5)
    thread = _run(relay.run, stop, heartbeat=heartbeat)
    _wait(lambda: relay.failures >= 5)  # backoff now 0.1 * 2**5 = 3.2 s between tries
    for _ in range(6):
        time.sleep(0.5)
        assert heartbeat.alive()
    publisher.hang.clear()
    publisher.failing = False
    _wait(lambda: not heartbeat.alive(), timeout=10)  # stuck in publish: no beat
    publisher.hang.set()
    _wait(lambda: publisher.published == [event.id])
    _wait(heartbeat.alive)
    stop.set()
    thread.join(5)
    database.dispose()
