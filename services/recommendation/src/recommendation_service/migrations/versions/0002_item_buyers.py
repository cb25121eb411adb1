"""Popularity counts distinct buyers: items.buyers, and items.popularity
recomputed from the histories (one decayed unit per buyer instead of the
decayed quantity).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from recommendation_service.config import RecommendationSettings
from recommendation_service.domain.model import NEGLIGIBLE, popularity_mass

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 1_000


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _write(items: dict[str, tuple[int, float]]) -> None:
    statement = sa.text(
        "UPDATE items SET buyers = :buyers, popularity = :popularity WHERE sku = :sku"
    )
    rows = [
        {"sku": sku, "buyers": buyers, "popularity": popularity}
        for sku, (buyers, popularity) in sorted(items.items())
    ]
    for start in range(0, len(rows), _BATCH):
        op.get_bind().execute(statement, rows[start : start + _BATCH])


# The columns this migration reads, typed so every dialect returns datetimes.
_TIMESTAMP = sa.DateTime(timezone=True)
_user_items = sa.table(
    "user_items",
    sa.column("sku", sa.String),
    sa.column("quantity", sa.Double),
    sa.column("last_purchased_at", _TIMESTAMP),
)
_purchases = sa.table(
    "purchases",
    sa.column("payment_id", sa.String),
    sa.column("occurred_at", _TIMESTAMP),
    sa.column("refunded_fraction", sa.Double),
    sa.column("recorded", sa.Boolean),
)
_purchase_items = sa.table(
    "purchase_items",
    sa.column("payment_id", sa.String),
    sa.column("sku", sa.String),
    sa.column("quantity", sa.BigInteger),
)


def upgrade() -> None:
    op.add_column("items", sa.Column("buyers", sa.Integer, nullable=False, server_default="0"))
    # The decay the service runs with (RECOMMENDATION_POPULARITY_HALF_LIFE_DAYS).
    parameters = RecommendationSettings().model_parameters
    counted: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    histories = op.get_bind().execute(
        sa.select(_user_items.c.sku, _user_items.c.last_purchased_at).where(
            _user_items.c.quantity > NEGLIGIBLE
        )
    )
    for sku, last_purchased_at in histories:
        buyers, popularity = counted[sku]
        mass = popularity_mass(1.0, _utc(last_purchased_at), parameters)
        counted[sku] = (buyers + 1, popularity + mass)
    op.execute("UPDATE items SET popularity = 0")
    _write(dict(counted))


def downgrade() -> None:
    # Back to the decayed quantity kept, re-derived from the purchases.
    parameters = RecommendationSettings().model_parameters
    kept: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    lines = op.get_bind().execute(
        sa.select(
            _purchase_items.c.sku,
            _purchase_items.c.quantity,
            _purchases.c.refunded_fraction,
            _purchases.c.occurred_at,
        )
        .join_from(
            _purchase_items,
            _purchases,
            _purchases.c.payment_id == _purchase_items.c.payment_id,
        )
        .where(_purchases.c.recorded.is_(True))
    )
    for sku, quantity, refunded_fraction, occurred_at in lines:
        left = float(quantity) * (1.0 - float(refunded_fraction))
        _buyers, popularity = kept[sku]
        kept[sku] = (0, popularity + popularity_mass(left, _utc(occurred_at), parameters))
    op.execute("UPDATE items SET popularity = 0")
    _write(dict(kept))
    with op.batch_alter_table("items") as batch:
        batch.drop_column("buyers")
