"""The model's arithmetic: preferences, exact incremental updates, ranking."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from recommendation_service.domain.model import (
    PERSONAL,
    POPULAR,
    HistoryItem,
    ModelParameters,
    Neighbour,
    buyer_change,
    history_change,
    personal_scores,
    popular_list,
    popularity_mass,
    popularity_now,
    preference,
    preferences,
    recent_history,
    recommend,
    user_weight,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_one_unit_counts_one_and_quantities_count_less_than_linearly() -> None:
    assert preference(1) == 1.0
    assert preference(3) == 2.0
    assert preference(0) == 0.0
    assert preference(-1) == 0.0
    assert preferences({"a": 1, "b": 0}) == {"a": 1.0}


def test_heavy_users_weigh_less() -> None:
    assert user_weight({"a": 1.0}, 0.75) == 1.0
    assert user_weight({f"s{i}": 1.0 for i in range(16)}, 0.75) == pytest.approx(0.125)
    assert user_weight({}, 0.75) == 0.0


def test_incremental_changes_add_up_to_the_recount() -> None:
    parameters = ModelParameters()
    rng = random.Random(7)  # noqa: S311 - seeded, reproducible data
    skus = [f"sku-{i}" for i in range(8)]
    quantities: dict[str, float] = {}
    mass: dict[str, float] = defaultdict(float)
    pairs: dict[tuple[str, str], float] = defaultdict(float)
    for _ in range(60):
        before = preferences(quantities)
        sku = rng.choice(skus)
        change = rng.choice([1, 2, 5, -0.5, -1])
        quantities[sku] = max(0.0, quantities.get(sku, 0.0) + change)
        delta = history_change(before, preferences(quantities), parameters)
        for item, item_delta in delta.items.items():
            mass[item] += item_delta.mass
        for key, weight in delta.pairs.items():
            pairs[key] += weight
    recount = history_change({}, preferences(quantities), parameters)
    for sku in skus:
        expected = recount.items[sku].mass if sku in recount.items else 0.0
        assert mass[sku] == pytest.approx(expected, abs=1e-9)
    for key in {*pairs, *recount.pairs}:
        assert pairs[key] == pytest.approx(recount.pairs.get(key, 0.0), abs=1e-9)


def test_pairs_are_symmetric_and_never_self() -> None:
    delta = history_change({}, {"a": 1.0, "b": 2.0, "c": 1.0}, ModelParameters())
    assert all(a != b for a, b in delta.pairs)
    assert all(delta.pairs[(a, b)] == delta.pairs[(b, a)] for a, b in delta.pairs)


def test_popularity_decays_by_half_per_half_life() -> None:
    parameters = ModelParameters(popularity_half_life_days=7)
    mass = popularity_mass(4, NOW, parameters)
    assert popularity_now(mass, NOW, parameters) == pytest.approx(4)
    assert popularity_now(mass, NOW + timedelta(days=7), parameters) == pytest.approx(2)


def test_a_buyer_adds_one_whatever_the_quantity() -> None:
    parameters = ModelParameters(popularity_half_life_days=7)
    small, huge = HistoryItem(1.0, NOW), HistoryItem(1_000_000.0, NOW)
    assert buyer_change(None, small, parameters) == buyer_change(None, huge, parameters)
    first = buyer_change(None, huge, parameters)
    assert first.buyers == 1
    assert popularity_now(first.popularity, NOW, parameters) == pytest.approx(1)
    # More of the same, bought later: still one buyer, now counted from the later purchase.
    later = HistoryItem(2_000_000.0, NOW + timedelta(days=7))
    again = buyer_change(huge, later, parameters)
    assert again.buyers == 0
    total = first.popularity + again.popularity
    assert popularity_now(total, NOW + timedelta(days=7), parameters) == pytest.approx(1)
    # Nothing kept any more (a full refund): the buyer is taken back.
    gone = buyer_change(later, None, parameters)
    assert gone.buyers == -1
    assert total + gone.popularity == pytest.approx(0, abs=1e-9 * abs(total))
    assert buyer_change(None, None, parameters).buyers == 0


def test_the_popular_list_needs_the_minimum_of_buyers() -> None:
    parameters = ModelParameters(popular_min_buyers=3)
    rows = [("one-buyer", 1, 900.0), ("b", 3, 3.0), ("a", 3, 3.0), ("c", 5, 4.5), ("d", 4, 0.0)]
    assert popular_list(rows, 10, parameters) == [("c", 4.5), ("a", 3.0), ("b", 3.0)]
    assert popular_list(rows, 1, parameters) == [("c", 4.5)]
    assert popular_list(rows, 10, ModelParameters(popular_min_buyers=1))[0] == ("one-buyer", 900.0)


def test_scores_correct_for_popularity() -> None:
    parameters = ModelParameters()
    # "a" co-occurs as often with a blockbuster as with a niche item: the niche wins.
    neighbours = {"a": [Neighbour("blockbuster", 1.0, 100.0, 100), Neighbour("niche", 1.0, 3.0, 3)]}
    scores = personal_scores({"a": 1.0}, {"a": 3.0}, neighbours, parameters)
    assert scores["niche"] > scores["blockbuster"] > 0


def test_an_item_with_too_few_buyers_is_no_personal_candidate() -> None:
    # One account bought "planted" in bulk beside "a": a huge C(a, planted), one buyer.
    neighbours = {"a": [Neighbour("planted", 400.0, 20.0, 1), Neighbour("usual", 0.5, 3.0, 3)]}
    scores = personal_scores({"a": 1.0}, {"a": 30.0}, neighbours, ModelParameters())
    assert set(scores) == {"usual"}
    loose = personal_scores(
        {"a": 1.0}, {"a": 30.0}, neighbours, ModelParameters(personal_min_buyers=1)
    )
    assert loose["planted"] > loose["usual"]


def test_recent_history_keeps_the_latest_items() -> None:
    history = {f"s{i}": HistoryItem(1.0, NOW + timedelta(minutes=i)) for i in range(5)}
    assert set(recent_history(history, 2)) == {"s4", "s3"}


def test_recommend_puts_personal_first_fills_with_popular_and_skips_bought() -> None:
    history = {"bought": HistoryItem(1.0, NOW)}
    result = recommend(
        history=history,
        personal={"x": 2.0, "bought": 9.0, "y": 1.0},
        popular=[("bought", 50.0), ("x", 40.0), ("p", 30.0), ("q", 20.0)],
        limit=4,
        parameters=ModelParameters(),
    )
    assert [(r.sku, r.source) for r in result] == [
        ("x", PERSONAL),
        ("y", PERSONAL),
        ("p", POPULAR),
        ("q", POPULAR),
    ]


def test_bought_items_can_be_kept_by_configuration() -> None:
    result = recommend(
        history={"bought": HistoryItem(1.0, NOW)},
        personal={"bought": 9.0},
        popular=[],
        limit=3,
        parameters=ModelParameters(exclude_purchased=False),
    )
    assert [r.sku for r in result] == ["bought"]
