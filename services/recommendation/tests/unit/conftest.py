"""Fakes of the service layer's ports: an in-memory model repository and cache."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Self

import pytest
from recommendation_service.domain.model import (
    NEGLIGIBLE,
    HistoryItem,
    ItemDelta,
    ModelParameters,
    Neighbour,
    Recommendation,
    popular_list,
)
from recommendation_service.service_layer.handlers import ModelUpdates, RecommendationQueries
from recommendation_service.service_layer.ports import StoredPurchase


class FakeRepository:
    def __init__(self) -> None:
        self.events: dict[str, str] = {}
        self.purchases: dict[str, StoredPurchase] = {}
        self.histories: dict[str, dict[str, HistoryItem]] = defaultdict(dict)
        self.items: dict[str, ItemDelta] = {}
        self.pairs: dict[tuple[str, str], float] = defaultdict(float)
        self.dead: list[tuple[str, str]] = []
        self.locked: list[str] = []

    def event_seen(self, event_id: str) -> bool:
        return event_id in self.events

    def record_event(self, event_id: str, event_type: str, at: datetime) -> None:
        self.events[event_id] = event_type

    def lock_user(self, user_id: str, at: datetime) -> None:
        self.locked.append(user_id)

    def purchase(self, payment_id: str) -> StoredPurchase | None:
        return self.purchases.get(payment_id)

    def save_purchase(self, purchase: StoredPurchase) -> None:
        self.purchases[purchase.payment_id] = replace(purchase, items=dict(purchase.items))

    def user_history(self, user_id: str) -> dict[str, HistoryItem]:
        return dict(self.histories.get(user_id, {}))

    def save_history(self, user_id: str, changes: Mapping[str, HistoryItem | None]) -> None:
        history = self.histories[user_id]
        for sku, item in changes.items():
            if item is None:
                history.pop(sku, None)
            else:
                history[sku] = item

    def apply_item_deltas(self, deltas: Mapping[str, ItemDelta]) -> None:
        for sku, delta in deltas.items():
            old = self.items.get(sku, ItemDelta())
            new = ItemDelta(
                old.mass + delta.mass,
                old.quantity + delta.quantity,
                old.popularity + delta.popularity,
                old.buyers + delta.buyers,
            )
            if new.quantity <= NEGLIGIBLE:
                self.items.pop(sku, None)
            else:
                self.items[sku] = new

    def apply_pair_deltas(self, deltas: Mapping[tuple[str, str], float]) -> None:
        for key, delta in deltas.items():
            self.pairs[key] += delta
            if self.pairs[key] <= NEGLIGIBLE:
                del self.pairs[key]

    def item_masses(self, skus: Iterable[str]) -> dict[str, float]:
        return {sku: self.items[sku].mass for sku in skus if sku in self.items}

    def neighbours(self, skus: Iterable[str]) -> dict[str, list[Neighbour]]:
        wanted = set(skus)
        found: dict[str, list[Neighbour]] = defaultdict(list)
        for (a, b), weight in self.pairs.items():
            if a in wanted and b in self.items:
                item = self.items[b]
                found[a].append(Neighbour(b, weight, item.mass, item.buyers))
        return dict(found)

    def popular(self, limit: int, min_buyers: int) -> list[tuple[str, float]]:
        rows = [(sku, item.buyers, item.popularity) for sku, item in self.items.items()]
        return popular_list(rows, limit, ModelParameters(popular_min_buyers=min_buyers))

    def record_dead_letter(
        self, event_id: str, event_type: str, reason: str, payload: bytes, at: datetime
    ) -> None:
        self.dead.append((event_id, reason))


class FakeUnitOfWork:
    def __init__(self, repository: FakeRepository) -> None:
        self.model = repository
        self.committed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pass

    def commit(self) -> None:
        self.committed = True


class FakeCache:
    def __init__(self) -> None:
        self.users: dict[str, list[Recommendation]] = {}
        self.popular: list[tuple[str, float]] | None = None
        self.invalidated: list[str] = []

    def get_user(self, user_id: str, limit: int) -> list[Recommendation] | None:
        items = self.users.get(user_id)
        return None if items is None else items[:limit]

    def set_user(self, user_id: str, items: Sequence[Recommendation]) -> None:
        self.users[user_id] = list(items)

    def invalidate_user(self, user_id: str) -> None:
        self.invalidated.append(user_id)
        self.users.pop(user_id, None)

    def get_popular(self) -> list[tuple[str, float]] | None:
        return self.popular

    def set_popular(self, items: Sequence[tuple[str, float]]) -> None:
        self.popular = list(items)


@pytest.fixture
def repository() -> FakeRepository:
    return FakeRepository()


@pytest.fixture
def cache() -> FakeCache:
    return FakeCache()


@pytest.fixture
def parameters() -> ModelParameters:
    return ModelParameters()


@pytest.fixture
def updates(
    repository: FakeRepository, cache: FakeCache, parameters: ModelParameters
) -> ModelUpdates:
    return ModelUpdates(lambda **_: FakeUnitOfWork(repository), cache, parameters)


@pytest.fixture
def queries(
    repository: FakeRepository, cache: FakeCache, parameters: ModelParameters
) -> RecommendationQueries:
    return RecommendationQueries(lambda **_: FakeUnitOfWork(repository), cache, parameters)
