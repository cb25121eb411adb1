"""The consumer-group lag gauge, read from a real Redis stream."""

from __future__ import annotations

import uuid

import pytest
import redis
from prometheus_client import REGISTRY, generate_latest
from switchyard_kit import watch_stream_lag

pytestmark = pytest.mark.redis


def test_lag_and_pending_of_a_consumer_group(redis_url: str) -> None:
    stream = f"events.lag-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    try:
        client.xgroup_create(stream, "readers", id="0", mkstream=True)
        for number in range(5):
            client.xadd(stream, {"n": str(number)})
        client.xreadgroup("readers", "one", {stream: ">"}, count=2)
        watch_stream_lag(redis_url, stream, "readers")
        exposition = generate_latest(REGISTRY).decode()
    finally:
        client.delete(stream)
        client.close()
    labels = f'group="readers",stream="{stream}"'
    assert f"event_stream_lag{{{labels}}} 3.0" in exposition
    assert f"event_stream_pending{{{labels}}} 2.0" in exposition
    assert f"event_stream_up{{{labels}}} 1.0" in exposition
