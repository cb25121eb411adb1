"""The auth database schema (SQLAlchemy Core), the same on PostgreSQL and SQLite.

Ids are UUID strings. Timestamps are stored and returned as timezone-aware UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from switchyard_kit import UtcDateTime

# Named constraints so alembic (batch mode on SQLite) can address them later.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UUID_LENGTH = 36
# BIGSERIAL on PostgreSQL; SQLite autoincrements only an INTEGER primary key.
SERIAL = BigInteger().with_variant(Integer(), "sqlite")


users = Table(
    "users",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    # Normalised address (lower-cased), so uniqueness ignores case.
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column(
        "user_id",
        String(UUID_LENGTH),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoke_reason", String(32), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    # When a refresh token of the session was last used (None: never).
    Column("last_used_at", UtcDateTime(), nullable=True),
    # ListRevokedSessions reads the recent revocations.
    Index("ix_sessions_revoked_at", "revoked_at"),
    # The retention job (cleanup-expired) finds ended sessions by both.
    Index("ix_sessions_expires_at", "expires_at"),
)

# One row per refresh token ever issued; a session is the token family.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column(
        "session_id",
        String(UUID_LENGTH),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # SHA-256 hex of the opaque token; the token itself is never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("spent_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("replaced_by_id", String(UUID_LENGTH), nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    # RFC 7638 thumbprint of the public key.
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("public_key", String(128), nullable=False),
    # Fernet token of the private key, or the raw key (base64url) when
    # key_encryption is "none" (development without AUTH_SIGNING_KEY_SECRET).
    Column("private_key", Text(), nullable=False),
    Column("key_encryption", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("signing_until", UtcDateTime(), nullable=True),
    Column("retired_at", UtcDateTime(), nullable=True),
)

# Security-relevant events (no secrets): who, what, when, from where.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column("occurred_at", UtcDateTime(), nullable=False, index=True),
    Column("event_type", String(48), nullable=False),
    # No foreign keys: the trail outlives what it talks about.
    Column("user_id", String(UUID_LENGTH), nullable=True, index=True),
    Column("session_id", String(UUID_LENGTH), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("details", JSON(), nullable=False),
)

# Events written in the transaction of the change; the relay publishes them.
outbox = Table(
    "outbox",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("event_id", String(UUID_LENGTH), nullable=False, unique=True),
    Column("stream", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("type", String(128), nullable=False),
    # The serialized switchyard.events.v1.Event envelope.
    Column("payload", LargeBinary(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
)
