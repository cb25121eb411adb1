"""The recommendation database: the model's state and what keeps it exact.

processed_events  every applied event id (deduplication of at-least-once delivery)
purchases         each payment seen, with its refunded fraction (+ purchase_items)
user_items        each user's kept quantity per sku (their history)
items             per sku: preference mass n, kept quantity, distinct buyers, popularity mass
item_pairs        C(a, b) for co-occurring skus, stored in both directions
dead_letters      events given up on by the broker-less delivery path
"""

from __future__ import annotations

import sqlalchemy as sa
from switchyard_kit import UtcDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Aware UTC on both backends (timestamptz on PostgreSQL; SQLite gets its zone back).
TIMESTAMP = UtcDateTime()
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

processed_events = sa.Table(
    "processed_events",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    # The retention job (cleanup-processed-events) deletes by age (migration 0003).
    sa.Column("processed_at", TIMESTAMP, nullable=False, index=True),
)

user_models = sa.Table(
    "user_models",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("payment_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("occurred_at", TIMESTAMP, nullable=False),
    sa.Column("refunded_fraction", sa.Double, nullable=False),
    sa.Column("recorded", sa.Boolean, nullable=False),
)

purchase_items = sa.Table(
    "purchase_items",
    metadata,
    sa.Column("payment_id", sa.String(64), sa.ForeignKey("purchases.payment_id"), primary_key=True),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
)

user_items = sa.Table(
    "user_items",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("quantity", sa.Double, nullable=False),
    sa.Column("last_purchased_at", TIMESTAMP, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("mass", sa.Double, nullable=False),
    sa.Column("quantity", sa.Double, nullable=False),
    sa.Column("popularity", sa.Double, nullable=False, index=True),
    # Users who keep some of the item (migration 0002).
    sa.Column("buyers", sa.Integer, nullable=False, server_default="0"),
)

item_pairs = sa.Table(
    "item_pairs",
    metadata,
    sa.Column("sku_a", sa.String(64), primary_key=True),
    sa.Column("sku_b", sa.String(64), primary_key=True),
    sa.Column("weight", sa.Double, nullable=False),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False, index=True),
)
