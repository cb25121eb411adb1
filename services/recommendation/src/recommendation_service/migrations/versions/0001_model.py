"""The recommendation model: processed events, purchases, user histories,
item aggregates, item pairs, dead letters.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_processed_events"),
    )
    op.create_table(
        "user_models",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_models"),
    )
    op.create_table(
        "purchases",
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("refunded_fraction", sa.Double, nullable=False),
        sa.Column("recorded", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name="pk_purchases"),
    )
    op.create_index("ix_purchases_user_id", "purchases", ["user_id"])
    op.create_table(
        "purchase_items",
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("payment_id", "sku", name="pk_purchase_items"),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["purchases.payment_id"], name="fk_purchase_items_payment_id_purchases"
        ),
    )
    op.create_table(
        "user_items",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Double, nullable=False),
        sa.Column("last_purchased_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "sku", name="pk_user_items"),
    )
    op.create_table(
        "items",
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("mass", sa.Double, nullable=False),
        sa.Column("quantity", sa.Double, nullable=False),
        sa.Column("popularity", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_items"),
    )
    op.create_index("ix_items_popularity", "items", ["popularity"])
    op.create_table(
        "item_pairs",
        sa.Column("sku_a", sa.String(64), nullable=False),
        sa.Column("sku_b", sa.String(64), nullable=False),
        sa.Column("weight", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("sku_a", "sku_b", name="pk_item_pairs"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )


def downgrade() -> None:
    for table in (
        "dead_letters",
        "item_pairs",
        "items",
        "user_items",
        "purchase_items",
        "purchases",
        "user_models",
        "processed_events",
    ):
        op.drop_table(table)
