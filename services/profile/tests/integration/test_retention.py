"""The profile job trim-dead-letters: the worker's dead letters past their
retention go (Redis stream events.<users_stream>.dead-letter.profile)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import redis
from profile_service.entrypoints.events import CONSUMER_GROUP
from switchyard_kit.events import dead_letter_stream_name


def _trim(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "profile_service", "trim-dead-letters"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_trim_dead_letters_keeps_the_recent_ones(redis_url, tmp_path):
    users_stream = f"users-{uuid.uuid4().hex[:8]}"
    stream = dead_letter_stream_name(users_stream, CONSUMER_GROUP)
    client = redis.Redis.from_url(redis_url)
    now = datetime.now(UTC)
    for age_days in (10, 9, 1):
        client.xadd(
            stream,
            {"event": b"x"},
            id=f"{int((now - timedelta(days=age_days)).timestamp() * 1000)}-0",
        )
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PROFILE_USERS_STREAM": users_stream,
        "PROFILE_DEAD_LETTER_RETENTION_DAYS": "7",
        "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path / 'profile.db'}",
    }
    try:
        first, second = _trim(env), _trim(env)
        assert "deleted 2 dead letter(s)" in first.stdout, first.stderr
        assert "deleted 0 dead letter(s)" in second.stdout
        assert client.xlen(stream) == 1
    finally:
        client.delete(stream)
        client.close()


def test_trim_dead_letters_without_redis_is_a_usage_error(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    result = _trim({**env, "PROFILE_DATABASE_URL": f"sqlite:///{tmp_path / 'profile.db'}"})
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr
