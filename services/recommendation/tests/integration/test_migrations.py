"""Migration 0002 (distinct buyers) on a database that 0001 filled, both ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from recommendation_service.adapters import tables as t
from recommendation_service.domain.model import ModelParameters, popularity_mass, popularity_now
from recommendation_service.entrypoints.app import MIGRATIONS_DIR
from switchyard_kit import upgrade_database
from switchyard_kit._migrations import alembic_config

from .conftest import BACKENDS

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=14)


@pytest.fixture(params=BACKENDS)
def url_at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
        url = create("recommendation")
    else:
        url = f"sqlite:///{tmp_path / 'recommendation.db'}"
    upgrade_database(url, MIGRATIONS_DIR, "0001")
    return url


def _fill(connection: sa.Connection) -> None:
    """What 0001 stored: bulk (one buyer, 1,000,000 units), tea (two buyers)."""
    parameters = ModelParameters()
    connection.execute(
        t.purchases.insert(),
        [
            {"payment_id": p, "user_id": u, "occurred_at": at, "refunded_fraction": f}
            | {"recorded": True}
            for p, u, at, f in [("p1", "u1", T0, 0.0), ("p2", "u2", T0, 0.0), ("p3", "u3", T1, 0.5)]
        ],
    )
    connection.execute(
        t.purchase_items.insert(),
        [
            {"payment_id": p, "sku": s, "quantity": q}
            for p, s, q in [("p1", "bulk", 1_000_000), ("p2", "tea", 1), ("p3", "tea", 2)]
        ],
    )
    connection.execute(
        t.user_items.insert(),
        [
            {"user_id": u, "sku": s, "quantity": q, "last_purchased_at": at}
            for u, s, q, at in [
                ("u1", "bulk", 1_000_000.0, T0),
                ("u2", "tea", 1.0, T0),
                ("u3", "tea", 1.0, T1),
            ]
        ],
    )
    old_popularity = {
        "bulk": popularity_mass(1_000_000, T0, parameters),
        "tea": popularity_mass(1, T0, parameters) + popularity_mass(1, T1, parameters),
    }
    connection.execute(
        t.items.insert(),
        [
            {"sku": s, "mass": 1.0, "quantity": 1.0, "popularity": p}
            for s, p in old_popularity.items()
        ],
    )


def _items(url: str, *columns: str) -> dict[str, tuple[float, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.select(sa.column("sku"), *map(sa.column, columns)).select_from(
                sa.table("items")
            )
            rows = connection.execute(query).all()
    finally:
        engine.dispose()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_0002_counts_buyers_and_downgrade_restores_quantities(url_at_0001: str) -> None:
    parameters = ModelParameters()
    engine = sa.create_engine(url_at_0001)
    with engine.begin() as connection:
        _fill(connection)
    engine.dispose()
    before = _items(url_at_0001, "popularity")

    upgrade_database(url_at_0001, MIGRATIONS_DIR)
    after = _items(url_at_0001, "buyers", "popularity")
    assert {sku: int(row[0]) for sku, row in after.items()} == {"bulk": 1, "tea": 2}
    assert popularity_now(after["bulk"][1], T0, parameters) == pytest.approx(1)
    # Each buyer counts one, decayed from their own latest purchase.
    assert popularity_now(after["tea"][1], T1, parameters) == pytest.approx(1.5)

    command.downgrade(alembic_config(url_at_0001, MIGRATIONS_DIR), "0001")
    restored = _items(url_at_0001, "popularity")
    assert restored["bulk"][0] == pytest.approx(before["bulk"][0])
    assert restored["tea"][0] == pytest.approx(before["tea"][0])
