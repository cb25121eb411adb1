"""Publishers: where a producer's relay hands its events."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import grpc
import redis
from switchyard.events.v1 import events_pb2, events_pb2_grpc

from switchyard_kit._channels import Backend
from switchyard_kit.events._envelope import stream_name

logger = logging.getLogger("switchyard.events")

_SINK_SERVICE = events_pb2.DESCRIPTOR.services_by_name["EventSinkService"]


class PublishError(RuntimeError):
    """The batch may not have been delivered; publish it again later."""


class EventPublisher(Protocol):
    """Delivers batches of events, in order, at least once.

    `publish` returns only when every event of the batch is durably handed
    over, and raises `PublishError` otherwise (part of the batch may have gone
    through: consumers deduplicate on the event id).
    """

    def publish(self, events: Sequence[events_pb2.Event]) -> None: ...

    def close(self) -> None: ...


class RedisStreamPublisher:
    """XADD each event to stream `events.<event.stream>`, trimmed to about `max_length`.

    Each entry holds `id`, `type`, `key` and `event` (the serialized
    envelope). Trimming is approximate (MAXLEN ~), which Redis does cheaply
    per node; consumers that fall further behind than `max_length` entries
    lose the oldest ones, so size it for the longest consumer outage.
    """

    def __init__(
        self, redis_url: str, *, max_length: int = 100_000, timeout_seconds: float = 5.0
    ) -> None:
        self.max_length = max_length
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )

    def publish(self, events: Sequence[events_pb2.Event]) -> None:
        if not events:
            return
        pipeline = self._client.pipeline(transaction=False)
        for event in events:
            pipeline.xadd(
                stream_name(event.stream),
                {
                    "id": event.id,
                    "type": event.type,
                    "key": event.key,
                    "event": event.SerializeToString(),
                },
                maxlen=self.max_length,
                approximate=True,
            )
        try:
            pipeline.execute()
        except redis.RedisError as exc:
            raise PublishError(f"redis: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


class GrpcSinkPublisher:
    """The broker-less path: `EventSinkService/Deliver` on every target, in order.

    A batch counts as published when every target answered OK. A target that
    fails makes the whole batch fail, so it is sent again to all of them:
    consumers deduplicate on the event id.
    """

    def __init__(self, targets: Sequence[str], *, timeout_seconds: float = 5.0) -> None:
        if not targets:
            raise ValueError("GrpcSinkPublisher needs at least one target")
        self.timeout_seconds = timeout_seconds
        self._backends = [Backend(f"event-sink {t}", t, _SINK_SERVICE) for t in targets]

    def publish(self, events: Sequence[events_pb2.Event]) -> None:
        if not events:
            return
        request = events_pb2.DeliverRequest(events=events)
        for backend in self._backends:
            stub = events_pb2_grpc.EventSinkServiceStub(backend.channel())
            try:
                stub.Deliver(request, timeout=self.timeout_seconds)
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                raise PublishError(f"event sink {backend.target}: {code}") from exc

    def close(self) -> None:
        for backend in self._backends:
            backend.close()


def build_publisher(
    redis_url: str | None,
    sink_targets: Sequence[str],
    *,
    max_length: int = 100_000,
    timeout_seconds: float = 5.0,
) -> EventPublisher | None:
    """Redis Streams when `redis_url` is set, else the gRPC sinks, else None
    (nowhere to publish: the caller keeps its events until one is configured)."""
    if redis_url:
        return RedisStreamPublisher(
            redis_url, max_length=max_length, timeout_seconds=timeout_seconds
        )
    targets = [t.strip() for t in sink_targets if t.strip()]
    if targets:
        return GrpcSinkPublisher(targets, timeout_seconds=timeout_seconds)
    return None
