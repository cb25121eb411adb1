"""Use cases against in-memory fakes: exactly-once updates, refunds, the fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from recommendation_service.domain.events import PurchaseRecorded, RefundRecorded
from recommendation_service.domain.model import PERSONAL, POPULAR
from recommendation_service.service_layer.handlers import (
    DEFAULT_LIMIT,
    ModelUpdates,
    RecommendationQueries,
)
from switchyard_kit import InvalidArgument

from .conftest import FakeCache, FakeRepository

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def buy(payment: str, user: str, *skus: str, minutes: int = 0) -> PurchaseRecorded:
    return PurchaseRecorded(payment, user, NOW + timedelta(minutes=minutes), dict.fromkeys(skus, 1))


def test_an_event_is_applied_once(updates: ModelUpdates, repository: FakeRepository) -> None:
    assert updates.apply("e1", buy("p1", "u1", "tea", "cups")).applied
    assert not updates.apply("e1", buy("p1", "u1", "tea", "cups")).applied
    assert repository.histories["u1"]["tea"].quantity == 1
    assert repository.items["tea"].quantity == 1


def test_the_same_payment_under_two_event_ids_counts_once(
    updates: ModelUpdates, repository: FakeRepository
) -> None:
    updates.apply("e1", buy("p1", "u1", "tea"))
    updates.apply("e2", buy("p1", "u1", "tea"))
    assert repository.items["tea"].quantity == 1


def test_a_user_change_drops_their_cached_list(updates: ModelUpdates, cache: FakeCache) -> None:
    updates.apply("e1", buy("p1", "u1", "tea"))
    assert cache.invalidated == ["u1"]


def test_a_full_refund_takes_everything_back(
    updates: ModelUpdates, repository: FakeRepository
) -> None:
    updates.apply("e1", buy("p1", "u1", "tea", "cups"))
    updates.apply("e2", RefundRecorded("p1", "u1", NOW, 1.0))
    assert repository.histories["u1"] == {}
    assert repository.items == {}
    assert dict(repository.pairs) == {}


def test_partial_refunds_are_cumulative_and_idempotent(
    updates: ModelUpdates, repository: FakeRepository
) -> None:
    updates.apply("e1", PurchaseRecorded("p1", "u1", NOW, {"tea": 4}))
    updates.apply("e2", RefundRecorded("p1", "u1", NOW, 0.25))
    updates.apply("e3", RefundRecorded("p1", "u1", NOW, 0.25))  # same cumulative state again
    assert repository.histories["u1"]["tea"].quantity == pytest.approx(3)
    updates.apply("e4", RefundRecorded("p1", "u1", NOW, 0.5))
    assert repository.histories["u1"]["tea"].quantity == pytest.approx(2)


def test_a_refund_that_overtakes_its_payment_is_remembered(
    updates: ModelUpdates, repository: FakeRepository
) -> None:
    updates.apply("e2", RefundRecorded("p1", "u1", NOW, 0.5))
    updates.apply("e1", PurchaseRecorded("p1", "u1", NOW, {"tea": 2}))
    assert repository.histories["u1"]["tea"].quantity == pytest.approx(1)


def buyers(updates: ModelUpdates, count: int, items: dict[str, int], prefix: str = "b") -> None:
    """`count` distinct users buy `items` once each."""
    for n in range(count):
        updates.apply(
            f"{prefix}-e{n}", PurchaseRecorded(f"{prefix}-p{n}", f"{prefix}{n}", NOW, items)
        )


def test_a_new_user_gets_popular_items(
    updates: ModelUpdates, queries: RecommendationQueries
) -> None:
    buyers(updates, 4, {"tea": 1}, "t")
    buyers(updates, 3, {"cups": 1}, "c")
    items = queries.recommend("newcomer", 5)
    assert [(i.sku, i.source) for i in items] == [("tea", POPULAR), ("cups", POPULAR)]
    # Buyers, decayed alike (they bought at the same time): 4 to 3.
    assert items[0].score / items[1].score == pytest.approx(4 / 3)


def test_one_buyer_of_a_huge_quantity_is_not_popular(
    updates: ModelUpdates, queries: RecommendationQueries, repository: FakeRepository
) -> None:
    updates.apply("e1", PurchaseRecorded("p1", "attacker", NOW, {"bulk": 1_000_000}))
    assert queries.recommend("newcomer", 5) == []
    buyers(updates, 3, {"tea": 1})
    assert [i.sku for i in queries.recommend("other-newcomer", 5)] == ["tea"]
    assert repository.items["bulk"].buyers == 1


def test_popularity_counts_buyers_not_quantity(
    updates: ModelUpdates, queries: RecommendationQueries
) -> None:
    buyers(updates, 3, {"bulk": 1_000_000}, "bulk")
    buyers(updates, 4, {"tea": 1}, "tea")
    items = queries.recommend("newcomer", 5)
    assert [i.sku for i in items] == ["tea", "bulk"]
    assert items[0].score / items[1].score == pytest.approx(4 / 3)


def test_a_buyer_counts_once_however_often_they_buy(
    updates: ModelUpdates, queries: RecommendationQueries, repository: FakeRepository
) -> None:
    for n in range(5):
        updates.apply(f"e{n}", buy(f"p{n}", "u1", "tea", minutes=n))
    buyers(updates, 1, {"tea": 1})
    assert repository.items["tea"].buyers == 2
    assert queries.recommend("newcomer", 5) == []  # 2 buyers: below the minimum of 3


def test_a_full_refund_takes_the_buyer_back(
    updates: ModelUpdates, queries: RecommendationQueries, repository: FakeRepository
) -> None:
    buyers(updates, 3, {"tea": 2})
    updates.apply("r1", RefundRecorded("b-p0", "b0", NOW, 0.5))  # keeps one: still a buyer
    assert repository.items["tea"].buyers == 3
    updates.apply("r2", RefundRecorded("b-p0", "b0", NOW, 1.0))
    assert repository.items["tea"].buyers == 2
    assert queries.recommend("newcomer", 5) == []


def test_no_purchases_anywhere_is_an_empty_list_that_is_not_cached(
    queries: RecommendationQueries, updates: ModelUpdates, cache: FakeCache
) -> None:
    assert queries.recommend("newcomer", 5) == []
    assert "newcomer" not in cache.users
    buyers(updates, 3, {"tea": 1})
    assert [i.sku for i in queries.recommend("newcomer", 5)] == ["tea"]


def test_co_purchases_become_personal_and_bought_items_are_left_out(
    updates: ModelUpdates, queries: RecommendationQueries
) -> None:
    updates.apply("e1", buy("p1", "u1", "tea", "cups"))
    updates.apply("e2", buy("p2", "u2", "tea", "cups", "kettle"))
    updates.apply("e4", buy("p4", "u4", "tea", "cups", "kettle"))
    updates.apply("e5", buy("p5", "u5", "cups", "kettle"))
    updates.apply("e3", buy("p3", "u3", "tea"))
    items = queries.recommend("u3", 5)
    assert [i.source for i in items[:2]] == [PERSONAL, PERSONAL]
    assert items[0].sku == "cups"
    assert "tea" not in {i.sku for i in items}


def test_one_buyer_beside_a_popular_item_is_no_personal_pick(
    updates: ModelUpdates, queries: RecommendationQueries
) -> None:
    buyers(updates, 3, {"tea": 1, "cups": 1})
    updates.apply("e1", PurchaseRecorded("p1", "attacker", NOW, {"tea": 1_000_000, "x": 1_000_000}))
    updates.apply("e2", buy("p2", "u9", "tea"))
    items = queries.recommend("u9", 5)
    assert [(i.sku, i.source) for i in items] == [("cups", PERSONAL)]


def test_lists_are_cached_and_sliced(
    updates: ModelUpdates, queries: RecommendationQueries, cache: FakeCache
) -> None:
    for n in range(15):
        buyers(updates, 3, {f"sku-{n}": 1}, f"u{n}-")
    assert len(queries.recommend("someone", 0)) == DEFAULT_LIMIT
    assert len(cache.users["someone"]) == 15
    assert len(queries.recommend("someone", 3)) == 3


@pytest.mark.parametrize("limit", [-1, 101])
def test_the_limit_is_checked(queries: RecommendationQueries, limit: int) -> None:
    with pytest.raises(InvalidArgument) as error:
        queries.recommend("u1", limit)
    assert error.value.violations[0].field == "limit"
