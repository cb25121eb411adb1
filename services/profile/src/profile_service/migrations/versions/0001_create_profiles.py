"""Create the profiles table.

Revision ID: 0001
Revises:
Create Date: 2025-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("bio", sa.String(500), nullable=False),
        sa.Column("avatar_url", sa.String(2048), nullable=False),
        sa.Column("locale", sa.String(128), nullable=False),
        sa.Column(
            "preferences",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_profiles"),
    )


def downgrade() -> None:
    op.drop_table("profiles")
