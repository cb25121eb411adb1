"""The payment database: one place that names every table and column."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from switchyard_kit import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
SERIAL = BigInteger().with_variant(Integer(), "sqlite")
# Aware UTC on both backends (timestamptz on PostgreSQL; SQLite gets its zone back).
TIMESTAMP = UtcDateTime()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    UniqueConstraint("kind", "owner", "currency", name="uq_accounts_kind_owner_currency"),
)

# Stored balances of guarded accounts (wallets), updated with their entries.
balances = Table(
    "balances",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("updated_at", TIMESTAMP, nullable=False),
    CheckConstraint("amount >= 0", name="not_negative"),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("reference_id", String(36), nullable=False, index=True),
    Column("created_at", TIMESTAMP, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("transaction_id", String(36), ForeignKey("ledger_transactions.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="not_zero"),
    Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    Index("ix_ledger_entries_transaction_id", "transaction_id"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("merchant_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(24), nullable=False),
    Column("failure_reason", String(64), nullable=False),
    Column("refunded_amount", BigInteger, nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("updated_at", TIMESTAMP, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint(
        "refunded_amount >= 0 AND refunded_amount <= amount", name="refunds_within_amount"
    ),
    Index("ix_payments_user_id_created_at_id", "user_id", "created_at", "id"),
)

payment_items = Table(
    "payment_items",
    metadata,
    Column("payment_id", String(36), ForeignKey("payments.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("payment_id", String(36), ForeignKey("payments.id"), nullable=False, index=True),
    Column("user_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
)

top_ups = Table(
    "top_ups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # JSON of the first response (status and body); written in the same
    # transaction as the claim, so a committed key always has its outcome.
    Column("outcome", Text, nullable=True),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("expires_at", TIMESTAMP, nullable=False, index=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("stream", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("type", String(128), nullable=False),
    # The payment, refund or top-up the event is about.
    Column("subject_id", String(36), nullable=False, index=True),
    # The serialized switchyard.events.v1.Event envelope.
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("sent_at", TIMESTAMP, nullable=True),
    Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
)

# The slots this shard holds (see domain/shards.py): the live slot map is the
# union of the "held" rows over the shards. A transaction holds its user's slot
# row FOR KEY SHARE, so `reshard` freezes a slot by locking it FOR UPDATE. A slot
# being copied here is "incoming" (nobody's yet) until the source has deleted
# its copy; the epoch counts the slot's moves. Empty with a single shard.
slot_ownership = Table(
    "slot_ownership",
    metadata,
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    CheckConstraint("state IN ('held', 'incoming')", name="state_known"),
)
