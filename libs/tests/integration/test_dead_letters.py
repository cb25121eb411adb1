"""Dead letters are operable (switchyard_kit.events.DeadLetters and the
`dead-letters` command every consuming service offers), on the real Redis:
an event the consumer gave up on is listed, shown, replayed back to its
stream once (a second replay, or a concurrent one, does nothing), and the
consumer then handles it."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from google.protobuf import wrappers_pb2
from switchyard.events.v1 import events_pb2
from switchyard_kit.events import (
    DeadLetters,
    EventConsumer,
    RedisStreamPublisher,
    dead_letters_command,
    new_event,
    stream_name,
)

pytestmark = pytest.mark.redis


def _broken(event: events_pb2.Event) -> None:
    raise RuntimeError(f"a bug meets {event.id}")


def _dead_lettered(redis_url: str, stream: str, count: int) -> list[str]:
    """Publish `count` events a broken handler fails on until they are dead
    letters; their event ids."""
    sent = [
        new_event(wrappers_pb2.StringValue(value=f"v{n}"), stream=stream, key="k")
        for n in range(count)
    ]
    RedisStreamPublisher(redis_url).publish(sent)
    broken = EventConsumer(
        redis_url,
        stream,
        group="g",
        consumer="c1",
        handler=_broken,
        max_deliveries=1,
        claim_idle_seconds=0,
    )
    for _ in range(4):
        broken.poll_once(block=False)
    broken.close()
    return [event.id for event in sent]


def _fixed_consumer(redis_url: str, stream: str, handled: list[str]) -> EventConsumer:
    def handle(event: events_pb2.Event) -> None:
        handled.append(event.id)

    return EventConsumer(redis_url, stream, group="g", consumer="c1", handler=handle)


def test_dead_letters_are_listed_shown_and_replayed_once(redis_url: str) -> None:
    stream = f"test-{uuid.uuid4().hex}"
    sent = _dead_lettered(redis_url, stream, 2)
    handled: list[str] = []
    client = redis.Redis.from_url(redis_url)
    dead_letters = DeadLetters(client, stream, "g")
    letters = dead_letters.list()
    assert [letter.event.id for letter in letters if letter.event] == sent
    assert all(letter.reason == "failed 1 deliveries" for letter in letters)
    shown = dead_letters.get(letters[0].entry_id)
    assert shown is not None
    assert shown.as_dict()["event"]["id"] == sent[0]

    first = dead_letters.replay(letters[0].entry_id)
    assert first.new_entry is not None
    again = dead_letters.replay(letters[0].entry_id)
    assert again.new_entry is None  # already replayed: nothing added
    assert [letter.entry_id for letter in dead_letters.list()] == [letters[1].entry_id]

    consumer = _fixed_consumer(redis_url, stream, handled)
    consumer.poll_once(block=False)
    consumer.poll_once(block=False)
    consumer.close()
    assert handled == [sent[0]]  # once, though replayed twice
    client.delete(stream_name(stream), dead_letters.dead_letter_stream)


def test_concurrent_replays_put_the_event_back_once(redis_url: str) -> None:
    stream = f"test-{uuid.uuid4().hex}"
    _dead_lettered(redis_url, stream, 1)
    client = redis.Redis.from_url(redis_url)
    entry = DeadLetters(client, stream, "g").list()[0].entry_id
    length_before = client.xlen(stream_name(stream))
    results: list[str | None] = []
    start = threading.Barrier(8)

    def replay() -> None:
        own = DeadLetters(redis.Redis.from_url(redis_url), stream, "g")
        start.wait()
        results.append(own.replay(entry).new_entry)

    threads = [threading.Thread(target=replay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([r for r in results if r is not None]) == 1
    assert client.xlen(stream_name(stream)) == length_before + 1
    client.delete(stream_name(stream), DeadLetters(client, stream, "g").dead_letter_stream)


def test_the_command_lists_shows_and_replays(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = f"test-{uuid.uuid4().hex}"
    sent = _dead_lettered(redis_url, stream, 2)
    handled: list[str] = []

    def run(*argv: str) -> tuple[int, str]:
        status = dead_letters_command("switchyard-test", redis_url, stream, "g", argv)
        return status, capsys.readouterr().out

    status, out = run("list")
    assert status == 0
    assert "2 of 2 dead letter(s)" in out
    entry = out.split()[0]
    assert sent[0] in out
    status, out = run("show", entry)
    assert status == 0
    assert sent[0] in out
    assert '"value": "v0"' in out  # the payload, decoded
    status, out = run("replay", "--all")
    assert status == 0
    assert out.count("replayed to") == 2
    status, out = run("replay", entry)
    assert "nothing done" in out
    status, out = run("list")
    assert "0 of 0 dead letter(s)" in out
    assert run("show", entry)[0] == 1

    consumer = _fixed_consumer(redis_url, stream, handled)
    consumer.poll_once(block=False)
    consumer.close()
    assert sorted(handled) == sorted(sent)
    redis.Redis.from_url(redis_url).delete(stream_name(stream))
