"""One relay process for every shard: the kit's OutboxRelay per shard, turned
in one loop.

Per-user order needs nothing across shards: a user's events are all on the
user's shard, and each shard's relay publishes its outbox in id order (the
kit's SqlOutbox). So the shards' relays need no coordination, and one process
takes them in turn rather than one Deployment per shard: one liveness probe,
one publisher connection, and adding a shard is a configuration change. A
second relay process running the same loop is a hot standby per shard (the
outbox head is locked SKIP LOCKED, a relay never publishes past a row another
holds). When one process no longer keeps up, split the shards between
processes; the order argument is unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from switchyard_kit import Heartbeat
from switchyard_kit.events import OutboxRelay


def run_relays(
    relays: Sequence[OutboxRelay],
    stop: threading.Event,
    *,
    heartbeat: Heartbeat | None = None,
    purge_every_seconds: float = 3600.0,
) -> None:
    """Turn every shard's relay until `stop` is set: each when its own delay
    (poll interval, or backoff after a failure of that shard) has passed, so a
    shard that is down slows no other."""
    due = [0.0] * len(relays)
    last_purge = time.monotonic()
    while not stop.is_set():
        if heartbeat is not None:
            heartbeat.beat()
        now = time.monotonic()
        for index, relay in enumerate(relays):
            if due[index] <= now:
                due[index] = time.monotonic() + relay.step()
        if time.monotonic() - last_purge >= purge_every_seconds:
            last_purge = time.monotonic()
            for relay in relays:
                try:
                    relay.purge_sent()
                except Exception:
                    relay.logger.exception("purging sent outbox rows failed")
        delay = min(due) - time.monotonic()
        # Short waits, so the heartbeat keeps beating through a long backoff.
        if delay > 0:
            stop.wait(min(delay, 1.0))
    for publisher in {id(relay.publisher): relay.publisher for relay in relays}.values():
        if publisher is not None:
            publisher.close()
