"""The real server (RecommendationService + EventSinkService) on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
import sqlalchemy as sa
from recommendation_service.config import RecommendationSettings
from recommendation_service.entrypoints.app import grpc_service
from switchyard.events.v1 import events_pb2, events_pb2_grpc
from switchyard.recommendation.v1 import recommendation_pb2, recommendation_pb2_grpc
from switchyard_kit import USER_ID_KEY, Database, InProcessCache, RunningServer

from .events import paid, poisoned, refunded


class Client:
    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.recommendations = recommendation_pb2_grpc.RecommendationServiceStub(self.channel)
        self.sink = events_pb2_grpc.EventSinkServiceStub(self.channel)

    def get(self, user_id: str, limit: int = 0) -> list[tuple[str, str]]:
        response = self.recommendations.GetRecommendations(
            recommendation_pb2.GetRecommendationsRequest(limit=limit),
            metadata=((USER_ID_KEY, user_id),),
            timeout=5,
        )
        return [(item.sku, item.source) for item in response.items]

    def deliver(self, *events: events_pb2.Event) -> int:
        response = self.sink.Deliver(events_pb2.DeliverRequest(events=events), timeout=10)
        return response.accepted


@pytest.fixture
def client(database: Database, settings: RecommendationSettings) -> Iterator[Client]:
    server = RunningServer(grpc_service(database, settings, cache=InProcessCache("rec")), settings)
    server.start()
    client = Client(f"127.0.0.1:{server.port}")
    yield client
    client.channel.close()
    server.stop()


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_purchases_delivered_become_recommendations(client: Client) -> None:
    tea, cups, kettle = fresh("tea"), fresh("cups"), fresh("kettle")
    alice, bob, carol, dave = fresh("alice"), fresh("bob"), fresh("carol"), fresh("dave")
    events = (
        paid(alice, {tea: 1, cups: 2, kettle: 1}),
        paid(bob, {tea: 1, cups: 1, kettle: 1}),
        paid(dave, {tea: 1, cups: 1, kettle: 1}),
    )
    assert client.deliver(*events) == 3
    newcomer = client.get(fresh("newcomer"))
    # Each has the 3 distinct buyers an item needs to be popular (or a personal pick).
    assert {sku for sku, _source in newcomer} == {tea, cups, kettle}
    assert {source for _sku, source in newcomer} == {"popular"}
    assert client.get(carol) == newcomer  # nothing bought yet: the popular list
    client.deliver(paid(carol, {tea: 1}))
    mine = client.get(carol)
    assert {mine[0][0], mine[1][0]} == {cups, kettle}
    assert {mine[0][1], mine[1][1]} == {"personal"}
    assert tea not in {sku for sku, _ in mine}


def test_redelivery_changes_nothing(client: Client, database: Database) -> None:
    user, sku = fresh("user"), fresh("sku")
    event = paid(user, {sku: 3})
    client.deliver(event)
    client.deliver(event, event)
    with database.read_engine.connect() as connection:
        quantity = connection.execute(
            sa.text("SELECT quantity FROM user_items WHERE user_id = :u"), {"u": user}
        ).scalar_one()
    assert quantity == 3


def test_a_full_refund_removes_the_purchase(client: Client, database: Database) -> None:
    user, sku = fresh("user"), fresh("sku")
    payment_id = str(uuid.uuid4())

    def kept() -> float | None:
        with database.read_engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT quantity FROM user_items WHERE user_id = :u"), {"u": user}
            ).first()
        return None if row is None else float(row.quantity)

    client.deliver(paid(user, {sku: 2}, payment_id=payment_id))
    client.deliver(refunded(user, payment_id, 100, 200))
    assert kept() == pytest.approx(1)
    client.deliver(refunded(user, payment_id, 200, 200))
    assert kept() is None


def test_a_poison_event_is_retried_then_dead_lettered(client: Client, database: Database) -> None:
    user = fresh("user")
    bad = poisoned(user)
    for _attempt in range(2):
        with pytest.raises(grpc.RpcError) as error:
            client.deliver(bad)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    good = paid(user, {fresh("sku"): 1})
    assert client.deliver(bad, good) == 2  # third failure: dead-lettered, the rest flows
    with database.read_engine.connect() as connection:
        letters = connection.execute(
            sa.text("SELECT event_id FROM dead_letters WHERE event_id = :e"), {"e": bad.id}
        ).all()
        assert len(letters) == 1
        assert (
            connection.execute(
                sa.text("SELECT count(*) FROM user_items WHERE user_id = :u"), {"u": user}
            ).scalar_one()
            == 1
        )


def test_the_limit_is_checked_and_a_caller_is_needed(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as error:
        client.get(fresh("user"), limit=101)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as error:
        client.recommendations.GetRecommendations(
            recommendation_pb2.GetRecommendationsRequest(), timeout=5
        )
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_popularity_counts_distinct_buyers_in_storage(client: Client, database: Database) -> None:
    bulk, tea = fresh("bulk"), fresh("tea")
    buyers = {fresh("buyer"): str(uuid.uuid4()) for _ in range(3)}
    one_buyer = fresh("one-buyer")
    client.deliver(paid(one_buyer, {bulk: 1_000_000}), paid(one_buyer, {bulk: 1_000_000}))
    client.deliver(*(paid(user, {tea: 1}, payment_id=p) for user, p in buyers.items()))
    assert client.get(fresh("newcomer")) == [(tea, "popular")]

    def counted() -> dict[str, int]:
        with database.read_engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT sku, buyers FROM items")).all()
            return {str(sku): int(buyers) for sku, buyers in rows}

    assert counted() == {bulk: 1, tea: 3}
    # A full refund takes the buyer back.
    user, payment_id = next(iter(buyers.items()))
    client.deliver(refunded(user, payment_id, 100, 100))
    assert counted() == {bulk: 1, tea: 2}


def test_an_event_with_a_bad_sku_is_dead_lettered_not_learned(
    client: Client, database: Database
) -> None:
    user = fresh("user")
    bad = paid(user, {"<svg onload=alert(1)>": 1_000_000})
    for _attempt in range(2):
        with pytest.raises(grpc.RpcError):
            client.deliver(bad)
    assert client.deliver(bad) == 1  # third failure: dead-lettered
    with database.read_engine.connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT count(*) FROM dead_letters WHERE event_id = :e"), {"e": bad.id}
            ).scalar_one()
            == 1
        )
        assert (
            connection.execute(
                sa.text("SELECT count(*) FROM items WHERE sku LIKE '<svg%'")
            ).scalar_one()
            == 0
        )
