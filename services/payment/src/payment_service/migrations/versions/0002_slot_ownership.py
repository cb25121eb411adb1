"""The slots a shard holds (payment sharded by user).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slot_ownership",
        sa.Column("slot", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("slot", name="pk_slot_ownership"),
        sa.CheckConstraint("state IN ('held', 'incoming')", name="ck_slot_ownership_state_known"),
    )


def downgrade() -> None:
    op.drop_table("slot_ownership")
