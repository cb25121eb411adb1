"""Consumers: one handler, run from a Redis consumer group or behind the
gRPC delivery endpoint, with the same at-least-once contract."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc
import redis
from google.protobuf.message import DecodeError
from switchyard.events.v1 import events_pb2, events_pb2_grpc
from typing_extensions import override

from switchyard_kit._liveness import Heartbeat, wait_beating
from switchyard_kit.events._envelope import dead_letter_stream_name, stream_name

logger = logging.getLogger("switchyard.events")

EventHandler = Callable[[events_pb2.Event], None]
"""Handles one event; raising means "not handled, deliver it again later".
Must be idempotent: the same event id can arrive more than once."""

DeadLetterHandler = Callable[[events_pb2.Event, str], None]
"""Told about an event that is given up on, with the reason."""


def _log_dead_letter(event: events_pb2.Event, reason: str) -> None:
    logger.error(
        "event dead-lettered",
        extra={"event_id": event.id, "event_type": event.type, "reason": reason},
    )


class EventConsumer:
    """Reads stream `events.<stream>` as a member of consumer group `group`.

    Each poll first takes over entries another consumer (or a crashed earlier
    life of this one) left unacknowledged for `claim_idle_seconds`
    (XAUTOCLAIM), then reads new ones (XREADGROUP). An entry is acknowledged
    (XACK) once the handler returns. One that was delivered `max_deliveries`
    times without success, or that cannot be parsed, is copied to
    `events.<stream>.dead-letter.<group>` and acknowledged, so one poison event
    does not stall the group.

    Example::

        consumer = EventConsumer(redis_url, "payments", group="recommendation",
                                 consumer=socket.gethostname(), handler=handle)
        consumer.run(stop_event)   # until stop_event is set
    """

    def __init__(
        self,
        redis_url: str,
        stream: str,
        *,
        group: str,
        consumer: str,
        handler: EventHandler,
        max_deliveries: int = 5,
        claim_idle_seconds: float = 30.0,
        block_seconds: float = 1.0,
        batch_size: int = 50,
        start_id: str = "0",
        dead_letter: DeadLetterHandler = _log_dead_letter,
    ) -> None:
        # XREADGROUP with BLOCK 0 waits forever: an idle loop would never turn,
        # and its heartbeat could not tell idle from hung.
        if block_seconds <= 0:
            raise ValueError("block_seconds must be positive (0 would block forever)")
        self.stream = stream_name(stream)
        self.dead_letter_stream = dead_letter_stream_name(stream, group)
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.max_deliveries = max_deliveries
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self.block_ms = max(1, int(block_seconds * 1000))
        self.batch_size = batch_size
        self.start_id = start_id
        self.dead_letter = dead_letter
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=block_seconds + 5, socket_connect_timeout=5
        )
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the group (and the stream) if needed; new groups start at `start_id`."""
        if self._group_ready:
            return
        try:
            self._client.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def poll_once(self, *, block: bool = True) -> int:
        """Claim stale entries, read new ones, handle them; the number handled."""
        self.ensure_group()
        handled = self._process(self._claim_stale(), claimed=True)
        response: Any = self._client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.batch_size,
            block=self.block_ms if block else None,
        )
        for _stream, entries in response or []:
            handled += self._process(entries, claimed=False)
        return handled

    def _claim_stale(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        result: Any = self._client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=self.batch_size,
        )
        # [next_start, entries, deleted_ids]; entries trimmed away come back as None.
        return [(entry_id, fields) for entry_id, fields in result[1] if fields is not None]

    def _deliveries(self, entry_ids: list[bytes]) -> dict[bytes, int]:
        if not entry_ids:
            return {}
        pending: Any = self._client.xpending_range(
            self.stream,
            self.group,
            min=entry_ids[0],
            max=entry_ids[-1],
            count=len(entry_ids) * 2,
            consumername=self.consumer,
        )
        return {item["message_id"]: int(item["times_delivered"]) for item in pending}

    def _process(self, entries: list[tuple[bytes, dict[bytes, bytes]]], *, claimed: bool) -> int:
        deliveries = self._deliveries([entry_id for entry_id, _ in entries]) if claimed else {}
        handled = 0
        for entry_id, fields in entries:
            event = events_pb2.Event()
            try:
                event.ParseFromString(fields[b"event"])
            except (KeyError, DecodeError):
                self._give_up(entry_id, fields, event, "unreadable entry")
                continue
            if deliveries.get(entry_id, 1) > self.max_deliveries:
                self._give_up(entry_id, fields, event, f"failed {self.max_deliveries} deliveries")
                continue
            try:
                self.handler(event)
            except Exception:
                logger.exception(
                    "event handler failed; will retry",
                    extra={"event_id": event.id, "event_type": event.type},
                )
                continue
            self._client.xack(self.stream, self.group, entry_id)
            handled += 1
        return handled

    def _give_up(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        event: events_pb2.Event,
        reason: str,
    ) -> None:
        record: dict[bytes | str, bytes | str] = dict(fields.items())
        record.update({"reason": reason, "source_entry": entry_id, "group": self.group})
        pipeline = self._client.pipeline(transaction=True)
        pipeline.xadd(self.dead_letter_stream, record)  # type: ignore[arg-type]
        pipeline.xack(self.stream, self.group, entry_id)
        pipeline.execute()
        self.dead_letter(event, reason)

    def run(
        self,
        stop: threading.Event,
        *,
        error_backoff_seconds: float = 1.0,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """Poll until `stop` is set; Redis outages are waited out, not fatal.

        `heartbeat` beats once per turn, between polls: a poll blocks at most
        `block_seconds` when idle, so an idle loop still beats; a handler or a
        Redis call that hangs stops the beat."""
        failing = False
        while not stop.is_set():
            if heartbeat is not None:
                heartbeat.beat()
            try:
                self.poll_once()
            except redis.RedisError as exc:
                if not failing:
                    logger.warning("event stream unavailable", extra={"error": str(exc)})
                    failing = True
                self._group_ready = False
                wait_beating(stop, error_backoff_seconds, heartbeat)
                continue
            if failing:
                logger.info("event stream available again")
                failing = False

    def close(self) -> None:
        self._client.close()


class EventSinkServicer(events_pb2_grpc.EventSinkServiceServicer):
    """The broker-less delivery endpoint: calls the same handler as EventConsumer.

    Events are handled in the order sent. The first one whose handler raises
    ends the call with UNAVAILABLE, so the producer sends the batch again
    (already handled events come again too: the handler deduplicates). An
    event that failed `max_deliveries` times is dead-lettered (reported to
    `dead_letter`, logged by default) and skipped, as on the Redis path.

    Example::

        events_pb2_grpc.add_EventSinkServiceServicer_to_server(EventSinkServicer(handle), server)
    """

    def __init__(
        self,
        handler: EventHandler,
        *,
        max_deliveries: int = 5,
        dead_letter: DeadLetterHandler = _log_dead_letter,
        remembered_failures: int = 10_000,
    ) -> None:
        self.handler = handler
        self.max_deliveries = max_deliveries
        self.dead_letter = dead_letter
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._remembered = remembered_failures
        self._lock = threading.Lock()

    def _record_failure(self, event_id: str) -> int:
        with self._lock:
            count = self._failures.pop(event_id, 0) + 1
            self._failures[event_id] = count
            while len(self._failures) > self._remembered:
                self._failures.popitem(last=False)
            return count

    @override
    def Deliver(
        self, request: events_pb2.DeliverRequest, context: grpc.ServicerContext
    ) -> events_pb2.DeliverResponse:
        accepted = 0
        for event in request.events:
            try:
                self.handler(event)
            except Exception:
                failures = self._record_failure(event.id)
                logger.exception(
                    "event handler failed",
                    extra={"event_id": event.id, "event_type": event.type, "failures": failures},
                )
                if failures < self.max_deliveries:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "event handling failed; retry")
                self.dead_letter(event, f"failed {failures} deliveries")
            else:
                with self._lock:
                    self._failures.pop(event.id, None)
            accepted += 1
        return events_pb2.DeliverResponse(accepted=accepted)
