"""Fixtures: a migrated recommendation database (SQLite and PostgreSQL), the
real gRPC server in-process, and a recount of the model from purchases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa
from recommendation_service.config import RecommendationSettings
from recommendation_service.domain.model import (
    ModelParameters,
    history_change,
    preferences,
)
from recommendation_service.entrypoints.app import MIGRATIONS_DIR, database_from
from switchyard_kit import Database, upgrade_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgres":
        create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
        url = create("recommendation")
    else:
        url = f"sqlite:///{tmp_path / 'recommendation.db'}"
    upgrade_database(url, MIGRATIONS_DIR)
    return url


@pytest.fixture
def settings(database_url: str) -> RecommendationSettings:
    return RecommendationSettings(
        port=0,
        database_url=database_url,
        grace_seconds=1,
        readiness_interval_seconds=0.5,
        sink_max_deliveries=3,
        db_pool_size=16,
    )


@pytest.fixture
def database(settings: RecommendationSettings) -> Iterator[Database]:
    db = database_from(settings)
    yield db
    db.dispose()


Model = tuple[dict[str, dict[str, float]], dict[str, float], dict[tuple[str, str], float]]


def recount(kept: Mapping[str, Mapping[str, float]], parameters: ModelParameters) -> Model:
    """user -> sku -> kept quantity  =>  (histories, item masses, pairs), from scratch."""
    masses: dict[str, float] = defaultdict(float)
    pairs: dict[tuple[str, str], float] = defaultdict(float)
    histories = {}
    for user, quantities in kept.items():
        history = {sku: q for sku, q in quantities.items() if q > 1e-9}
        if history:
            histories[user] = history
        delta = history_change({}, preferences(history), parameters)
        for sku, item in delta.items.items():
            masses[sku] += item.mass
        for key, weight in delta.pairs.items():
            pairs[key] += weight
    return histories, dict(masses), dict(pairs)


def stored_model(url: str, users: set[str], skus: set[str]) -> Model:
    """The same three from the database, limited to `users` and `skus`."""
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
                if row.sku in skus
            }
            pairs = {
                (row.sku_a, row.sku_b): float(row.weight)
                for row in connection.execute(
                    sa.text("SELECT sku_a, sku_b, weight FROM item_pairs")
                )
                if row.sku_a in skus and row.sku_b in skus
            }
    finally:
        engine.dispose()
    return dict(histories), masses, pairs


def assert_same_model(stored: Model, expected: Model) -> None:
    histories, masses, pairs = stored
    want_histories, want_masses, want_pairs = expected
    assert histories.keys() == want_histories.keys()
    for user, history in want_histories.items():
        assert histories[user] == pytest.approx(history, rel=1e-9, abs=1e-9)
    assert masses == pytest.approx(want_masses, rel=1e-9, abs=1e-9)
    assert {k for k, v in pairs.items() if v > 1e-9} == {
        k for k, v in want_pairs.items() if v > 1e-9
    }
    for key, weight in want_pairs.items():
        assert pairs.get(key, 0.0) == pytest.approx(weight, rel=1e-9, abs=1e-9)
