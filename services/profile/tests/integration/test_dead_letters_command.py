"""`python -m profile_service dead-letters`: the worker group's dead letters
(events.<users_stream>.dead-letter.profile) listed and replayed once to the
users stream (switchyard_kit.events.DeadLetters, tested there in depth)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import redis
from profile_service.entrypoints.events import CONSUMER_GROUP
from switchyard.profile.v1 import profile_pb2
from switchyard_kit.events import dead_letter_stream_name, new_event, stream_name


def _command(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "profile_service", "dead-letters", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dead_letters_are_listed_then_replayed_once(redis_url, tmp_path):
    users_stream = f"users-{uuid.uuid4().hex[:8]}"
    dead = dead_letter_stream_name(users_stream, CONSUMER_GROUP)
    client = redis.Redis.from_url(redis_url)
    event = new_event(profile_pb2.Profile(user_id="u-1"), stream=users_stream, key="u-1")
    entry = client.xadd(dead, {"event": event.SerializeToString(), "reason": "failed 5 deliveries"})
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PROFILE_USERS_STREAM": users_stream,
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path / 'profile.db'}",
    }
    try:
        listed = _command(env, "list")
        assert listed.returncode == 0, listed.stderr
        assert event.id in listed.stdout
        assert "reason: failed 5 deliveries" in listed.stdout
        first, second = (
            _command(env, "replay", entry.decode()),
            _command(env, "replay", entry.decode()),
        )
        assert "replayed to" in first.stdout, first.stderr
        assert "nothing done" in second.stdout
        assert client.xlen(stream_name(users_stream)) == 1
        assert client.xlen(dead) == 0
    finally:
        client.delete(dead, stream_name(users_stream))
        client.close()
