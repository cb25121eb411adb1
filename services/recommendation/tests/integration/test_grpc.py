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
    alice, bob, carol = fresh("alice"), fresh("bob"), fresh("carol")
    assert client.deliver(paid(alice, {tea: 1, cups: 2}), paid(bob, {tea: 1, kettle: 1})) == 2
    newcomer = client.get(fresh("newcomer"))
    assert newcomer
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
