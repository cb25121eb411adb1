"""The profile service's tables (SQLAlchemy Core). Migrations mirror them."""

from __future__ import annotations

from sqlalchemy import JSON, Column, MetaData, String, Table
from sqlalchemy.dialects import postgresql
from switchyard_kit import UtcDateTime

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

# JSON everywhere, stored as jsonb on PostgreSQL.
PreferencesType = JSON().with_variant(postgresql.JSONB(), "postgresql")

profiles = Table(
    "profiles",
    metadata,
    # The auth user id (a UUID, lowercase); the key makes creation idempotent.
    Column("user_id", String(36), primary_key=True),
    Column("display_name", String(64), nullable=False),
    Column("bio", String(500), nullable=False),
    Column("avatar_url", String(2048), nullable=False),
    Column("locale", String(128), nullable=False),
    Column("preferences", PreferencesType, nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
)
