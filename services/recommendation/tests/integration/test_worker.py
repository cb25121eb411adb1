"""The worker's consumer on the real Redis, and concurrent updates on both databases:
whatever the delivery order and concurrency, the model equals a recount."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict

import pytest
import redis
from recommendation_service.adapters.events import decode
from recommendation_service.adapters.unit_of_work import SqlModelUnitOfWork
from recommendation_service.config import RecommendationSettings
from recommendation_service.entrypoints.app import cache_from, consumer_from
from recommendation_service.service_layer.handlers import ModelUpdates
from switchyard_kit import Database, InProcessCache
from switchyard_kit.events import RedisStreamPublisher

from .conftest import assert_same_model, recount, stored_model
from .events import paid, poisoned, refunded


def _purchases(users: list[str], skus: list[str], count: int, seed: int) -> tuple[list, dict]:
    """Events (purchases and some refunds) and what each user keeps in the end."""
    rng = random.Random(seed)  # noqa: S311 - seeded, reproducible data
    events = []
    kept: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for _ in range(count):
        user = rng.choice(users)
        items = {sku: rng.randint(1, 3) for sku in rng.sample(skus, rng.randint(1, 3))}
        payment_id = str(uuid.uuid4())
        events.append(paid(user, items, payment_id=payment_id))
        amount = sum(items.values()) * 100
        refund = rng.choice([0, 0, 0, amount // 2, amount])
        if refund:
            events.append(refunded(user, payment_id, refund, amount))
        for sku, quantity in items.items():
            kept[user][sku] += quantity * (1 - refund / amount)
    return events, kept


@pytest.mark.redis
def test_the_worker_applies_the_stream_once_and_dead_letters_poison(
    database: Database, settings: RecommendationSettings, redis_url: str, database_url: str
) -> None:
    group = f"rec-test-{uuid.uuid4().hex[:8]}"
    # A stream of its own: the run on the other database publishes poison too.
    stream = f"payments-{uuid.uuid4().hex[:8]}"
    worker_settings = settings.model_copy(
        update={
            "redis_url": redis_url,
            "payments_stream": stream,
            "worker_group": group,
            "worker_start_id": "$",
            "worker_claim_idle_seconds": 0.2,
            "worker_max_deliveries": 2,
            "worker_block_seconds": 0.1,
        }
    )
    consumer = consumer_from(database, worker_settings, cache=InProcessCache("rec"))
    consumer.ensure_group()
    users = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    skus = [f"sku-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    events, kept = _purchases(users, skus, 30, seed=3)
    bad = poisoned(users[0])
    for event in (*events, bad):
        event.stream = stream
    publisher = RedisStreamPublisher(redis_url)
    publisher.publish([*events[:10], bad, *events[10:]])
    publisher.publish(events[:5])  # the relay published some twice
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            consumer.poll_once(block=False)
            letters = client.xrange(consumer.dead_letter_stream)
            pending = client.xpending(consumer.stream, group)["pending"]
            if letters and not pending:
                break
            time.sleep(0.05)
        assert [entry[1][b"id"].decode() for entry in letters] == [bad.id]
        assert pending == 0
    finally:
        client.delete(consumer.stream, consumer.dead_letter_stream)
        consumer.close()
        publisher.close()
        client.close()
    assert_same_model(
        stored_model(database_url, set(users), set(skus)),
        recount(kept, settings.model_parameters),
    )


def test_concurrent_events_of_many_users_equal_a_recount(
    database: Database, settings: RecommendationSettings, database_url: str
) -> None:
    users = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    skus = [f"sku-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    events, kept = _purchases(users, skus, 60, seed=11)
    updates = ModelUpdates(
        lambda **_: SqlModelUnitOfWork(database),
        cache_from(settings, InProcessCache("rec")),
        settings.model_parameters,
    )
    by_user: dict[str, list] = defaultdict(list)
    for event in events:
        by_user[event.key].append(event)
    errors: list[BaseException] = []

    def work(batch: list) -> None:
        # Each thread replays its user's events in order, every one twice, as
        # at-least-once delivery may; users run concurrently.
        for event in batch:
            for _attempt in range(2):
                for _retry in range(20):
                    try:
                        domain_event = decode(event)
                        assert domain_event is not None
                        updates.apply(event.id, domain_event)
                        break
                    except AssertionError:
                        raise
                    except Exception as exc:  # contention on SQLite: retried like a redelivery
                        if _retry == 19:
                            errors.append(exc)
                        time.sleep(0.02)

    threads = [threading.Thread(target=work, args=(batch,)) for batch in by_user.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert_same_model(
        stored_model(database_url, set(users), set(skus)),
        recount(kept, settings.model_parameters),
    )
