"""switchyard_kit.events against the real Redis: publish, consume, retry, dead-letter."""

from __future__ import annotations

import threading
import uuid
from concurrent import futures

import grpc
import pytest
import redis
from google.protobuf import wrappers_pb2
from switchyard.events.v1 import events_pb2, events_pb2_grpc
from switchyard_kit.events import (
    EventConsumer,
    EventSinkServicer,
    GrpcSinkPublisher,
    PublishError,
    RedisStreamPublisher,
    build_publisher,
    dead_letter_stream_name,
    new_event,
    stream_name,
    unpack_payload,
)

pytestmark = pytest.mark.redis


def _events(stream: str, count: int, key: str = "k") -> list[events_pb2.Event]:
    return [
        new_event(wrappers_pb2.StringValue(value=f"v{n}"), stream=stream, key=key)
        for n in range(count)
    ]


def test_published_events_are_consumed_once_in_order(redis_url):
    stream = f"test-{uuid.uuid4().hex}"
    publisher = RedisStreamPublisher(redis_url, max_length=1000)
    sent = _events(stream, 5)
    publisher.publish(sent)
    seen: list[str] = []
    consumer = EventConsumer(
        redis_url, stream, group="g", consumer="c1", handler=lambda e: seen.append(e.id)
    )
    assert consumer.poll_once(block=False) == 5
    assert consumer.poll_once(block=False) == 0
    assert seen == [e.id for e in sent]
    value = unpack_payload(sent[0], wrappers_pb2.StringValue)
    assert value is not None
    assert value.value == "v0"
    assert unpack_payload(sent[0], wrappers_pb2.Int64Value) is None
    consumer.close()
    publisher.close()


def test_failed_events_are_reclaimed_then_dead_lettered(redis_url):
    stream = f"test-{uuid.uuid4().hex}"
    RedisStreamPublisher(redis_url).publish(_events(stream, 2))
    attempts: dict[str, int] = {}
    dead: list[str] = []

    def flaky(event: events_pb2.Event) -> None:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.payload.value.endswith(b"v1") or attempts[event.id] < 2:
            raise RuntimeError("not yet")

    consumer = EventConsumer(
        redis_url,
        stream,
        group="g",
        consumer="c1",
        handler=flaky,
        max_deliveries=3,
        claim_idle_seconds=0,
        dead_letter=lambda event, reason: dead.append(event.id),
    )
    handled = sum(consumer.poll_once(block=False) for _ in range(6))
    assert handled == 1  # v0 succeeded on its second delivery
    assert len(dead) == 1  # v1 failed 3 deliveries
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(dead_letter_stream_name(stream, "g")) == 1
    assert client.xpending(stream_name(stream), "g")["pending"] == 0
    client.close()


def test_a_second_consumer_takes_over_stale_entries(redis_url):
    stream = f"test-{uuid.uuid4().hex}"
    RedisStreamPublisher(redis_url).publish(_events(stream, 3))

    def crash(_event: events_pb2.Event) -> None:
        raise RuntimeError("crashed before ack")

    first = EventConsumer(
        redis_url, stream, group="g", consumer="c1", handler=crash, claim_idle_seconds=60
    )
    assert first.poll_once(block=False) == 0
    seen: list[str] = []
    second = EventConsumer(
        redis_url,
        stream,
        group="g",
        consumer="c2",
        handler=lambda e: seen.append(e.id),
        claim_idle_seconds=0,
    )
    assert second.poll_once(block=False) == 3
    assert len(seen) == 3


def test_consumer_run_stops_and_survives_a_missing_server(redis_url):
    stop = threading.Event()
    consumer = EventConsumer(
        "redis://127.0.0.1:1/0", "nowhere", group="g", consumer="c", handler=print
    )
    thread = threading.Thread(
        target=consumer.run, args=(stop,), kwargs={"error_backoff_seconds": 0.05}
    )
    thread.start()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_publishing_to_a_dead_redis_raises_publish_error():
    publisher = RedisStreamPublisher("redis://127.0.0.1:1/0", timeout_seconds=0.5)
    with pytest.raises(PublishError):
        publisher.publish(_events("x", 1))


def test_build_publisher_prefers_redis_then_sinks():
    assert isinstance(build_publisher("redis://127.0.0.1:6379/15", []), RedisStreamPublisher)
    assert isinstance(build_publisher(None, ["127.0.0.1:1"]), GrpcSinkPublisher)
    assert build_publisher(None, [" "]) is None


def test_event_sink_runs_the_same_handler_and_dead_letters():
    seen: list[str] = []
    dead: list[str] = []

    def handle(event: events_pb2.Event) -> None:
        if event.key == "poison":
            raise ValueError("cannot handle")
        seen.append(event.id)

    server = grpc.server(futures.ThreadPoolExecutor(2))
    servicer = EventSinkServicer(
        handle, max_deliveries=4, dead_letter=lambda e, reason: dead.append(e.id)
    )
    events_pb2_grpc.add_EventSinkServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        publisher = GrpcSinkPublisher([f"127.0.0.1:{port}"], timeout_seconds=2)
        good = _events("s", 2)
        publisher.publish(good)
        assert seen == [e.id for e in good]
        poison = _events("s", 1, key="poison")
        with pytest.raises(PublishError):
            publisher.publish(poison)  # 3 attempts (gRPC retries IDEMPOTENT calls)
        publisher.publish(poison)  # 4th delivery: dead-lettered, accepted
        assert dead == [poison[0].id]
        publisher.close()
    finally:
        server.stop(0)
