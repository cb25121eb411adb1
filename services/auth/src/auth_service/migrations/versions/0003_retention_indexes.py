"""Index on sessions.expires_at: the retention job finds ended sessions by it.

Revision ID: 0003_retention_indexes
Revises: 0002_sessions_audit_outbox
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_retention_indexes"
down_revision: str | None = "0002_sessions_audit_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_expires_at", table_name="sessions")
