"""The dead letters of a consumer group: list them, show one, replay them.

An `EventConsumer` moves an event it gave up on to
`events.<stream>.dead-letter.<group>` with the reason. Once the cause is
fixed, `replay` puts the event back on its stream (`events.<stream>`) and
removes it from the dead letters in one MULTI, watched: a dead letter is
replayed at most once, even by two operators at the same time, and replaying
one already replayed does nothing. The stream's other consumer groups see the
event again too; every consumer deduplicates on `Event.id`, so it changes
nothing there.

Each consuming service offers it as a command (`python -m <name>_service
dead-letters list|show|replay`), through `dead_letters_command`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from switchyard.events.v1 import events_pb2

from switchyard_kit.events._envelope import dead_letter_stream_name, stream_name

LIST_LIMIT = 100


@dataclass(frozen=True)
class DeadLetter:
    entry_id: str
    reason: str
    # The entry id it had on the event stream.
    source_entry: str
    # None when the entry could not be parsed (reason "unreadable entry").
    event: events_pb2.Event | None
    fields: dict[str, bytes]

    def summary(self) -> str:
        event = self.event
        described = f"{event.type} id={event.id} key={event.key}" if event else "(unreadable)"
        return f"{self.entry_id}  {described}  reason: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "entry_id": self.entry_id,
            "reason": self.reason,
            "source_entry": self.source_entry,
        }
        if self.event is not None:
            try:
                shown["event"] = MessageToDict(self.event)
            except TypeError:
                # A payload type this process does not know: the envelope without it.
                envelope = events_pb2.Event()
                envelope.CopyFrom(self.event)
                envelope.ClearField("payload")
                shown["event"] = MessageToDict(envelope)
                shown["payload_type"] = self.event.payload.TypeName()
        return shown


@dataclass(frozen=True)
class Replayed:
    entry_id: str
    # The event's new entry id on its stream; None when it was not (or no longer) a dead letter.
    new_entry: str | None


class DeadLetters:
    """The dead letters of consumer group `group` on logical stream `stream`."""

    def __init__(self, client: redis.Redis, stream: str, group: str) -> None:
        self.client = client
        self.stream = stream_name(stream)
        self.dead_letter_stream = dead_letter_stream_name(stream, group)

    def list(self, count: int = LIST_LIMIT) -> list[DeadLetter]:
        """The oldest `count` dead letters."""
        entries: Any = self.client.xrange(self.dead_letter_stream, count=count)
        return [_dead_letter(entry_id, fields) for entry_id, fields in entries]

    def size(self) -> int:
        return int(self.client.xlen(self.dead_letter_stream))

    def get(self, entry_id: str) -> DeadLetter | None:
        entries: Any = self.client.xrange(self.dead_letter_stream, entry_id, entry_id)
        return _dead_letter(*entries[0]) if entries else None

    def replay(self, entry_id: str) -> Replayed:
        """Put the dead letter back on its stream and drop it from the dead
        letters, atomically; nothing when it is not (or no longer) there."""
        with self.client.pipeline(transaction=True) as pipeline:
            while True:
                try:
                    pipeline.watch(self.dead_letter_stream)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    entries: Any = pipeline.xrange(self.dead_letter_stream, entry_id, entry_id)
                    if not entries:
                        pipeline.unwatch()
                        return Replayed(entry_id, None)
                    fields = entries[0][1]
                    if b"event" not in fields:
                        raise ValueError(f"dead letter {entry_id} holds no event to replay")
                    pipeline.multi()
                    pipeline.xadd(self.stream, {"event": fields[b"event"]})
                    pipeline.xdel(self.dead_letter_stream, entry_id)
                    new_entry, _deleted = pipeline.execute()
                    return Replayed(entry_id, _text(new_entry))
                except redis.WatchError:
                    # Another replay (or the trim job) changed the dead letters: look again.
                    continue


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _dead_letter(entry_id: bytes | str, raw: dict[bytes, bytes]) -> DeadLetter:
    fields = {_text(key): value for key, value in raw.items()}
    event: events_pb2.Event | None = events_pb2.Event()
    try:
        event.ParseFromString(fields["event"])  # type: ignore[union-attr]
    except (KeyError, DecodeError):
        event = None
    return DeadLetter(
        entry_id=_text(entry_id),
        reason=_text(fields.get("reason", b"")),
        source_entry=_text(fields.get("source_entry", b"")),
        event=event,
        fields=fields,
    )


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{prog} dead-letters")
    commands = parser.add_subparsers(dest="action", required=True)
    listing = commands.add_parser("list", help="the oldest dead letters, one a line")
    listing.add_argument("--count", type=int, default=LIST_LIMIT)
    show = commands.add_parser("show", help="one dead letter as JSON (envelope and payload)")
    show.add_argument("entry")
    replay = commands.add_parser("replay", help="put dead letters back on their stream, once")
    replay.add_argument("entries", nargs="*")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    return parser


def _list(dead_letters: DeadLetters, count: int) -> int:
    letters = dead_letters.list(count)
    for letter in letters:
        print(letter.summary())
    total = dead_letters.size()
    print(f"{len(letters)} of {total} dead letter(s) on {dead_letters.dead_letter_stream}")
    return 0


def _show(dead_letters: DeadLetters, entry: str) -> int:
    letter = dead_letters.get(entry)
    if letter is None:
        print(f"no dead letter {entry}")
        return 1
    print(json.dumps(letter.as_dict(), indent=2))
    return 0


def _replay(dead_letters: DeadLetters, entries: Sequence[str]) -> int:
    for entry in entries:
        result = dead_letters.replay(entry)
        if result.new_entry is None:
            print(f"{entry}: not a dead letter (already replayed?): nothing done")
        else:
            print(f"{entry}: replayed to {dead_letters.stream} as {result.new_entry}")
    return 0


def dead_letters_command(
    prog: str, redis_url: str, stream: str, group: str, argv: Sequence[str]
) -> int:
    """`dead-letters list [--count N] | show ENTRY | replay ENTRY... | replay --all`,
    printing to stdout; the exit status."""
    parser = _parser(prog)
    args = parser.parse_args(list(argv))
    if args.action == "replay" and args.all == bool(args.entries):
        parser.error("replay takes entry ids or --all, not both")
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
    dead_letters = DeadLetters(client, stream, group)
    try:
        if args.action == "list":
            return _list(dead_letters, args.count)
        if args.action == "show":
            return _show(dead_letters, args.entry)
        if args.all:
            return _replay(
                dead_letters, [d.entry_id for d in dead_letters.list(dead_letters.size())]
            )
        return _replay(dead_letters, args.entries)
    finally:
        client.close()
