"""Redis down: the caches read as misses (the databases answer), sign-in and
payments keep working, events wait in the outbox and are all published once
Redis is back."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from e2e.harness import AuthActions
from google.protobuf.message import DecodeError
from sqlalchemy import create_engine, text
from switchyard.events.v1 import events_pb2

from faults.platform import (
    FaultPlatform,
    new_account,
    pay,
    record,
    start_fault_platform,
    top_up,
    wait_for,
)


@pytest.fixture(scope="module")
def fp(
    tmp_path_factory: pytest.TempPathFactory,
    create_postgres_database: Callable[[str], str],
    redis_url: str,
) -> Iterator[FaultPlatform]:
    running = start_fault_platform(
        tmp_path_factory.mktemp("redis"),
        create_postgres_database,
        redis_url,
        proxy_redis=True,
        # The relay retries a failed publish with backoff capped low for the test.
        env={"PAYMENT_RELAY_MAX_BACKOFF_SECONDS": "1"},
    )
    yield running
    running.stop()


def _backlog(fp: FaultPlatform) -> int:
    match = re.search(r'outbox_unsent_events\{outbox="outbox"\} (\d+)', fp.metrics("relay"))
    assert match, "no outbox gauge on the relay's /metrics"
    return int(match.group(1))


def test_redis_outage_degrades_caches_and_delays_events_only(
    fp: FaultPlatform, redis_url: str
) -> None:
    with fp.client() as api:
        account = new_account(api)
        top_up(api, account)
        assert api.get("/v1/profiles/me", headers=account.headers).status_code == 200
        fp.proxies["redis"].cut()
        try:
            login = api.post(
                "/v1/auth/login", json={"email": account.email, "password": account.password}
            )
            assert login.status_code == 200, login.text
            assert api.get("/v1/profiles/me", headers=account.headers).status_code == 200
            patched = api.patch(
                "/v1/profiles/me",
                json={"bio": "written while Redis is down"},
                headers=account.headers,
            )
            assert patched.status_code == 200, patched.text
            # Signup needs no Redis, and its profile is there at once.
            newcomer = AuthActions(api).signup(display_name="Signed up while Redis is down")
            public = api.get(f"/v1/profiles/{newcomer.user_id}", headers=account.headers)
            assert public.status_code == 200, public.text
            payment_ids = []
            for _ in range(3):
                response = pay(api, account, uuid.uuid4().hex)
                assert response.status_code == 201, response.text
                payment_ids.append(response.json()["id"])
            assert api.get("/v1/wallet", headers=account.headers).status_code == 200
            # The relay cannot publish: the events wait in the outbox.
            wait_for(lambda: _backlog(fp) >= 3, timeout=10, interval=0.2)
            profile = api.get("/v1/profiles/me", headers=account.headers).json()
            assert profile["bio"] == "written while Redis is down"
        finally:
            fp.proxies["redis"].restore()
        drained = wait_for(lambda: _backlog(fp) == 0, timeout=20, interval=0.2)
        record("Redis back -> outbox drained", drained)

    engine = create_engine(fp.config.extra_env["PAYMENT_DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT event_id, stream, sent_at FROM outbox WHERE subject_id = ANY(:ids)"),
            {"ids": payment_ids},
        ).all()
    engine.dispose()
    assert len(rows) >= len(payment_ids)
    assert all(row.sent_at is not None for row in rows)
    client = redis.Redis.from_url(redis_url)
    try:
        published = set()
        for stream in {row.stream for row in rows}:
            for _entry_id, fields in client.xrange(f"events.{stream}"):
                # The stream is shared with other tests: skip what is not an Event.
                with contextlib.suppress(KeyError, DecodeError):
                    published.add(events_pb2.Event.FromString(fields[b"event"]).id)
    finally:
        client.close()
    missing = {row.event_id for row in rows} - published
    assert not missing, f"events lost: {missing}"
