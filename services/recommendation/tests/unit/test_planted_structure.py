"""On purchases with a planted co-purchase structure, the model beats most-popular.

Eight "aisles" of six items each; every shopper sticks to one aisle and also
buys some of four blockbusters everyone buys. One aisle item per shopper is
held out. Most-popular can only offer blockbusters and the biggest aisles;
the model must find the shopper's aisle from what they bought. Everything
runs through the service layer (events in, recommendations out).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from recommendation_service.domain.events import PurchaseRecorded
from recommendation_service.domain.model import PERSONAL, ModelParameters
from recommendation_service.service_layer.handlers import ModelUpdates, RecommendationQueries

from .conftest import FakeCache, FakeRepository, FakeUnitOfWork

START = datetime(2026, 1, 1, tzinfo=UTC)
K = 5


def test_the_model_finds_the_planted_aisles_and_beats_most_popular() -> None:
    rng = random.Random(2024)  # noqa: S311 - seeded, reproducible data
    aisles = [[f"aisle{a}-item{i}" for i in range(6)] for a in range(8)]
    blockbusters = [f"blockbuster-{i}" for i in range(4)]
    repository, cache, parameters = FakeRepository(), FakeCache(), ModelParameters()
    updates = ModelUpdates(lambda **_: FakeUnitOfWork(repository), cache, parameters)
    queries = RecommendationQueries(lambda **_: FakeUnitOfWork(repository), cache, parameters)

    held_out: dict[str, str] = {}
    bought: dict[str, set[str]] = {}
    for number in range(240):
        user = f"user-{number}"
        aisle = aisles[rng.randrange(len(aisles))]
        picks = rng.sample(aisle, 4)
        held_out[user] = picks[-1]
        basket = set(picks[:-1]) | set(rng.sample(blockbusters, rng.randint(1, 3)))
        bought[user] = basket
        for position, sku in enumerate(sorted(basket)):
            updates.apply(
                f"{user}-{position}",
                PurchaseRecorded(
                    f"{user}-payment-{position}",
                    user,
                    START + timedelta(minutes=number),
                    {sku: rng.randint(1, 3)},
                ),
            )

    popularity = sorted(repository.items.items(), key=lambda e: (-e[1].quantity, e[0]))
    model_hits = popular_hits = 0
    for user, target in held_out.items():
        items = queries.recommend(user, K)
        assert items[0].source == PERSONAL
        model_hits += target in {item.sku for item in items}
        popular = [sku for sku, _ in popularity if sku not in bought[user]][:K]
        popular_hits += target in popular
    model_rate, popular_rate = model_hits / len(held_out), popular_hits / len(held_out)
    assert model_rate > 0.9
    assert model_rate > popular_rate + 0.5
