"""The event pipeline under faults, on a platform of its own (PostgreSQL + Redis,
the recommendation worker as a real process): a worker killed mid-stream loses
and doubles nothing, a malformed event is dead-lettered while the rest flows,
and a stopped recommendation service never fails /v1/me."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from google.protobuf import any_pb2
from recommendation_service.domain.model import ModelParameters, history_change, preferences
from switchyard.events.v1 import events_pb2
from switchyard.payment.v1 import events_pb2 as payment_events
from switchyard.payment.v1 import payment_pb2
from switchyard_kit.events import dead_letter_stream_name, new_event, stream_name

from e2e.harness import Account, AuthActions, RunningPlatform, start_platform
from e2e.test_recommendations import fund, pay, recommendations, skus

ME_BUDGET_SECONDS = 1.5
GROUP = f"recommendation-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    create_postgres_database: Any,
    redis_url: str,
) -> Iterator[RunningPlatform]:
    running = start_platform(
        "production",
        tmp_path_factory.mktemp("recommendation-faults"),
        create_postgres_database,
        redis_url,
        extra_env={
            "RECOMMENDATION_WORKER_GROUP": GROUP,
            "RECOMMENDATION_WORKER_START_ID": "$",
            # A dead worker's entries are taken over after 1 s; poison gives up after 3 tries.
            "RECOMMENDATION_WORKER_CLAIM_IDLE_SECONDS": "1",
            "RECOMMENDATION_WORKER_MAX_DELIVERIES": "3",
            "RECOMMENDATION_WORKER_BATCH_SIZE": "4",
            "GATEWAY_ME_TIMEOUT_MS": str(int(ME_BUDGET_SECONDS * 1000)),
        },
    )
    yield running
    running.stop()


def _component(platform: RunningPlatform, name: str) -> Any:
    return next(c for c in platform.platform.components if c.name == name)


def _payments(api: httpx.Client, account: Account) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"page_size": 100}
        if token:
            params["page_token"] = token
        page = api.get("/v1/payments", params=params, headers=account.headers).json()
        found.extend(page["payments"])
        token = page.get("next_page_token", "")
        if not token:
            return found


def _recount(api: httpx.Client, accounts: list[Account]) -> dict[str, dict[str, float]]:
    """What each user keeps, from the payment history (GET /v1/payments)."""
    kept: dict[str, dict[str, float]] = {}
    for account in accounts:
        quantities: dict[str, float] = defaultdict(float)
        for payment in _payments(api, account):
            if payment["status"] not in (
                "PAYMENT_STATUS_SUCCEEDED",
                "PAYMENT_STATUS_PARTIALLY_REFUNDED",
                "PAYMENT_STATUS_REFUNDED",
            ):
                continue
            share = 1 - payment["refunded_amount"] / payment["amount"]
            for item in payment["items"]:
                quantities[item["sku"]] += item["quantity"] * share
        kept[account.user_id] = {sku: q for sku, q in quantities.items() if q > 1e-9}
    return kept


def _stored(url: str, users: set[str], catalogue: set[str]) -> tuple[dict, dict, dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            histories: dict[str, dict[str, float]] = defaultdict(dict)
            for row in connection.execute(sa.text("SELECT user_id, sku, quantity FROM user_items")):
                if row.user_id in users:
                    histories[row.user_id][row.sku] = float(row.quantity)
            masses = {
                row.sku: float(row.mass)
                for row in connection.execute(sa.text("SELECT sku, mass FROM items"))
                if row.sku in catalogue
            }
            pairs = {
                (row.sku_a, row.sku_b): float(row.weight)
                for row in connection.execute(
                    sa.text("SELECT sku_a, sku_b, weight FROM item_pairs")
                )
                if row.sku_a in catalogue
            }
    finally:
        engine.dispose()
    return dict(histories), masses, pairs


def _matches(stored: tuple[dict, dict, dict], kept: dict[str, dict[str, float]]) -> bool:
    parameters = ModelParameters()
    masses: dict[str, float] = defaultdict(float)
    pairs: dict[tuple[str, str], float] = defaultdict(float)
    for quantities in kept.values():
        delta = history_change({}, preferences(quantities), parameters)
        for sku, item in delta.items.items():
            masses[sku] += item.mass
        for key, weight in delta.pairs.items():
            pairs[key] += weight
    histories, stored_masses, stored_pairs = stored
    expected_histories = {user: q for user, q in kept.items() if q}

    def close(a: dict, b: dict) -> bool:
        keys = {k for k, v in a.items() if abs(v) > 1e-9} | {
            k for k, v in b.items() if abs(v) > 1e-9
        }
        return all(
            abs(a.get(k, 0.0) - b.get(k, 0.0)) <= 1e-6 * max(1.0, abs(b.get(k, 0.0))) for k in keys
        )

    return (
        histories.keys() == expected_histories.keys()
        and all(close(histories[u], expected_histories[u]) for u in expected_histories)
        and close(stored_masses, dict(masses))
        and close(stored_pairs, dict(pairs))
    )


def _purchases_applied(engine: sa.Engine, users: set[str]) -> int:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT user_id FROM purchases WHERE recorded")).all()
    return sum(1 for row in rows if row.user_id in users)


def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(
    platform: RunningPlatform, auth: AuthActions, api: httpx.Client
) -> None:
    worker = _component(platform, "recommendation-worker")
    url = platform.database_url("recommendation")
    accounts = [auth.signup() for _ in range(4)]
    for account in accounts:
        fund(api, account, 10_000_000)
    users = {account.user_id for account in accounts}
    catalogue = skus(8)

    # The worker is down while the payments happen: they pile up in the stream.
    platform.platform.processes["recommendation-worker"].kill()
    platform.platform.stop_component("recommendation-worker")
    payments = 0
    for n in range(60):
        account = accounts[n % len(accounts)]
        items = {catalogue[(n * 3 + k) % len(catalogue)]: 1 + (n + k) % 3 for k in range(1 + n % 3)}
        payment = pay(api, account, items)
        payments += 1
        if n % 7 == 0:  # some refunds, partial and full
            amount = payment["amount"] if n % 14 == 0 else payment["amount"] // 2
            response = api.post(
                f"/v1/payments/{payment['id']}/refunds",
                json={"amount": amount},
                headers=account.headers | {"Idempotency-Key": f"refund-{uuid.uuid4()}"},
            )
            assert response.status_code == 201, response.text

    # Start it, and kill it (SIGKILL: no goodbye) once it is part-way through.
    engine = sa.create_engine(url)
    platform.platform.start_component(worker)
    deadline = time.monotonic() + 30
    applied = 0
    while applied == 0 and time.monotonic() < deadline:
        applied = _purchases_applied(engine, users)
    platform.platform.processes["recommendation-worker"].kill()
    platform.platform.stop_component("recommendation-worker")
    killed_at = _purchases_applied(engine, users)
    assert 0 < killed_at < payments, f"the worker was not caught mid-stream ({killed_at})"

    # A new worker (another consumer name) takes over the dead one's pending entries.
    platform.platform.start_component(worker)
    kept = _recount(api, accounts)
    deadline = time.monotonic() + 60
    while not _matches(_stored(url, users, set(catalogue)), kept):
        assert time.monotonic() < deadline, "the model never matched the payment history"
        time.sleep(0.25)
    assert _purchases_applied(engine, users) == payments
    time.sleep(2)  # anything still pending would be applied by now...
    assert _matches(_stored(url, users, set(catalogue)), kept)  # ...and nothing twice
    engine.dispose()


def test_a_malformed_event_is_dead_lettered_and_the_rest_flows(
    platform: RunningPlatform, auth: AuthActions, api: httpx.Client, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    payments = platform.config.extra_env["RECOMMENDATION_PAYMENTS_STREAM"]
    stream = stream_name(payments)
    # One entry that is not an event at all, one that breaks the payment contract.
    # Entries keep the publisher's fields (id, type, key, event). They are
    # deleted at the end.
    garbage_id = client.xadd(
        stream,
        {
            "id": "garbage",
            "type": "garbage",
            "key": f"poison-{uuid.uuid4()}",
            "event": b"\xff\x00not-protobuf",
        },
    )
    injected = [garbage_id]
    packed = any_pb2.Any(
        type_url=f"type.googleapis.com/{payment_events.PaymentSucceeded.DESCRIPTOR.full_name}",
        value=b"\xff\xff\xff",
    )
    broken = events_pb2.Event(
        id=str(uuid.uuid4()), type="switchyard.payment.v1.PaymentSucceeded", payload=packed
    )
    broken.occurred_at.GetCurrentTime()
    zero = new_event(
        payment_events.PaymentSucceeded(
            payment_id=str(uuid.uuid4()),
            user_id=str(uuid.uuid4()),
            items=[payment_pb2.LineItem(sku="sku-zero", quantity=0, unit_amount=1)],
        ),
        stream=payments,
        key="someone",
    )
    for event in (broken, zero):
        fields = {
            "id": event.id,
            "type": event.type,
            "key": f"poison-{uuid.uuid4()}",
            "event": event.SerializeToString(),
        }
        injected.append(client.xadd(stream, fields))

    # Meanwhile, real payments flow on.
    tea, cups = skus(2)
    # Three earlier buyers: an item needs 3 to be a pick (RECOMMENDATION_PERSONAL_MIN_BUYERS).
    earlier = [auth.signup() for _ in range(3)]
    buyer = auth.signup()
    for account in (*earlier, buyer):
        fund(api, account)
    for account in earlier:
        pay(api, account, {tea: 1, cups: 1})
    pay(api, buyer, {tea: 1})
    deadline = time.monotonic() + 15
    while cups not in {i["sku"] for i in recommendations(api, buyer) if i["source"] == "personal"}:
        assert time.monotonic() < deadline, "events behind the poison did not flow"
        time.sleep(0.1)

    letters_stream = dead_letter_stream_name(payments, GROUP)
    deadline = time.monotonic() + 30
    while True:
        letters = client.xrange(letters_stream)
        sources = {fields[b"source_entry"] for _id, fields in letters}
        ids = {fields.get(b"id") for _id, fields in letters}
        if garbage_id in sources and {broken.id.encode(), zero.id.encode()} <= ids:
            break
        assert time.monotonic() < deadline, f"dead letters: {letters}"
        time.sleep(0.2)
    pending = client.xpending(stream, GROUP)["pending"]
    client.xdel(stream, *injected)
    client.close()
    assert pending == 0


def test_a_stopped_recommendation_service_never_fails_me(
    platform: RunningPlatform, auth: AuthActions, api: httpx.Client
) -> None:
    account = auth.signup(display_name="Barbara Liskov")
    fund(api, account, 700)
    service = _component(platform, "recommendation")
    platform.platform.stop_component("recommendation")
    try:
        started = time.monotonic()
        response = api.get("/v1/me", headers=account.headers)
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert elapsed < ME_BUDGET_SECONDS + 0.5
        body = response.json()
        assert body["recommendations"] == {"status": "unavailable"}
        assert body["profile"]["display_name"] == "Barbara Liskov"
        assert body["wallet"]["balances"] == [{"currency": "EUR", "amount": 700}]

        direct = api.get("/v1/recommendations", headers=account.headers)
        assert direct.status_code == 503
        assert direct.headers["content-type"].startswith("application/problem+json")
        problem = direct.json()
        assert (problem["status"], problem["code"]) == (503, "UNAVAILABLE")
    finally:
        platform.platform.start_component(service)
    # Each gateway worker has its own channel and breaker, so one worker may
    # answer 200 while the other still waits out its breaker pause: wait for
    # both routes, each on its own, within one bound.
    deadline = time.monotonic() + 30
    while api.get("/v1/recommendations", headers=account.headers).status_code != 200:
        assert time.monotonic() < deadline, "recommendations did not come back"
        time.sleep(0.5)
    while "items" not in api.get("/v1/me", headers=account.headers).json()["recommendations"]:
        assert time.monotonic() < deadline, "/v1/me did not show recommendations again"
        time.sleep(0.5)
