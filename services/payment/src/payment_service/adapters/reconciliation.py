"""The ledger's invariants, checked with SQL over each shard, and the
invariants that span the shards (placement by slot, merchant balances)."""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import text
from sqlalchemy.orm import Session
from switchyard_kit import Database

from payment_service.adapters.shards import ShardSet

# Each check: a name, what a row of its result means, and a query that
# returns one row per violation (nothing when the invariant holds).
CHECKS: list[tuple[str, str, str]] = [
    (
        "ledger_sums_to_zero",
        "entries of a currency do not sum to zero",
        "SELECT currency, SUM(amount) FROM ledger_entries"
        " GROUP BY currency HAVING SUM(amount) <> 0",
    ),
    (
        "transaction_balanced",
        "a transaction's entries do not sum to zero in a currency",
        "SELECT transaction_id, currency, SUM(amount) FROM ledger_entries"
        " GROUP BY transaction_id, currency HAVING SUM(amount) <> 0",
    ),
    (
        "wallet_not_negative",
        "a stored wallet balance is negative",
        "SELECT account_id, amount FROM balances WHERE amount < 0",
    ),
    (
        "wallet_never_negative",
        "a wallet's running balance went below zero at some entry",
        "SELECT account_id, MIN(running) FROM ("
        "  SELECT e.account_id, SUM(e.amount) OVER (PARTITION BY e.account_id ORDER BY e.id"
        "    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running"
        "  FROM ledger_entries e JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'wallet'"
        ") r GROUP BY account_id HAVING MIN(running) < 0",
    ),
    (
        "balance_matches_entries",
        "a stored balance differs from the sum of its account's entries",
        "SELECT b.account_id, b.amount, COALESCE(s.total, 0) FROM balances b"
        " LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries"
        "   GROUP BY account_id) s ON s.account_id = b.account_id"
        " WHERE b.amount <> COALESCE(s.total, 0)",
    ),
    (
        "refunds_within_payment",
        "a payment's refunds exceed it or differ from its refunded_amount",
        "SELECT p.id, p.amount, p.refunded_amount, COALESCE(r.total, 0) FROM payments p"
        " LEFT JOIN (SELECT payment_id, SUM(amount) AS total FROM refunds"
        "   GROUP BY payment_id) r ON r.payment_id = p.id"
        " WHERE COALESCE(r.total, 0) > p.amount OR COALESCE(r.total, 0) <> p.refunded_amount",
    ),
    (
        "status_matches_refunds",
        "a payment's status disagrees with its refunds",
        "SELECT id, status, refunded_amount FROM payments WHERE NOT ("
        " (status = 'succeeded' AND refunded_amount = 0)"
        " OR (status = 'partially_refunded' AND refunded_amount > 0 AND refunded_amount < amount)"
        " OR (status = 'refunded' AND refunded_amount = amount)"
        " OR (status = 'failed' AND refunded_amount = 0))",
    ),
    (
        "payment_booked_once",
        "a payment has not exactly one ledger transaction (none if failed)",
        "SELECT p.id, p.status, COUNT(lt.id) FROM payments p"
        " LEFT JOIN ledger_transactions lt ON lt.reference_id = p.id AND lt.kind = 'payment'"
        " GROUP BY p.id, p.status"
        " HAVING COUNT(lt.id) <> CASE WHEN p.status = 'failed' THEN 0 ELSE 1 END",
    ),
    (
        "payment_entries_match",
        "a payment's ledger entries do not move its amount out of the wallet",
        "SELECT p.id FROM payments p JOIN ledger_transactions lt"
        " ON lt.reference_id = p.id AND lt.kind = 'payment'"
        " JOIN ledger_entries e ON e.transaction_id = lt.id"
        " GROUP BY p.id, p.amount"
        " HAVING SUM(CASE WHEN e.amount < 0 THEN -e.amount ELSE 0 END) <> p.amount",
    ),
    (
        "refund_booked_once",
        "a refund has not exactly one ledger transaction of its amount",
        "SELECT r.id FROM refunds r LEFT JOIN ledger_transactions lt"
        " ON lt.reference_id = r.id AND lt.kind = 'refund'"
        " LEFT JOIN ledger_entries e ON e.transaction_id = lt.id AND e.amount > 0"
        " GROUP BY r.id, r.amount"
        " HAVING COUNT(DISTINCT lt.id) <> 1 OR COALESCE(SUM(e.amount), 0) <> r.amount",
    ),
    (
        "event_per_movement",
        "a succeeded payment, refund or top-up has not exactly one outbox event"
        " (rows older than the oldest kept outbox row may have been purged)",
        "SELECT s.id, COUNT(o.id) FROM ("
        "  SELECT id, created_at FROM payments WHERE status <> 'failed'"
        "  UNION ALL SELECT id, created_at FROM refunds"
        "  UNION ALL SELECT id, created_at FROM top_ups"
        ") s LEFT JOIN outbox o ON o.subject_id = s.id GROUP BY s.id, s.created_at"
        " HAVING COUNT(o.id) > 1 OR (COUNT(o.id) = 0"
        "  AND s.created_at >= (SELECT MIN(created_at) FROM outbox))",
    ),
]


Failure = tuple[str, str, list[str]]


class SqlLedgerAudit:
    """The service layer's LedgerAudit port: `check_snapshot` on each shard (its
    checks named "<shard>/<check>" when there are several), then the checks
    across the shards (`cross_shard_failures`)."""

    def __init__(self, shards: ShardSet) -> None:
        self.shards = shards

    def failures(self) -> list[Failure]:
        if not self.shards.sharded:
            return [failure for _, database in self.shards for failure in check_snapshot(database)]
        failures = [
            (f"{name}/{check}", description, samples)
            for name, database in self.shards
            for check, description, samples in check_snapshot(database)
        ]
        return failures + cross_shard_failures(self.shards)


# Who a shard's rows belong to: every row of a user's money names the user.
_OWNERS = (
    "SELECT owner FROM accounts WHERE kind = 'wallet'"
    " UNION SELECT user_id FROM payments UNION SELECT user_id FROM refunds"
    " UNION SELECT user_id FROM top_ups UNION SELECT user_id FROM idempotency_keys"
)
_MOVEMENT_IDS = (
    "SELECT id FROM payments UNION ALL SELECT id FROM refunds UNION ALL SELECT id FROM top_ups"
)
# A merchant's clearing balance on one shard, and what its payments say it should be.
_MERCHANT_BALANCES = (
    "SELECT a.owner, a.currency, SUM(e.amount) FROM ledger_entries e"
    " JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'merchant'"
    " GROUP BY a.owner, a.currency"
)
_MERCHANT_EARNINGS = (
    "SELECT merchant_id, currency, SUM(amount - refunded_amount) FROM payments"
    " WHERE status <> 'failed' GROUP BY merchant_id, currency"
)


def merchant_balances(shards: ShardSet) -> dict[tuple[str, str], int]:
    """{(merchant id, currency): balance}: the sum of the merchant's clearing
    accounts over every shard (each payment books the merchant side on the
    payer's shard, so no single shard knows the whole balance)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for _, database in shards:
        with database.session() as session:
            for merchant, currency, amount in session.execute(text(_MERCHANT_BALANCES)):
                totals[(merchant, currency)] += int(amount)
    return dict(totals)


def cross_shard_failures(shards: ShardSet) -> list[Failure]:
    """The invariants no single shard can check:

    - every slot is held by exactly one shard;
    - every user's rows are on the shard that holds the user's slot;
    - no payment, refund or top-up is on two shards (a doubled move);
    - each merchant's balance summed over the shards equals what its payments
      minus their refunds say, summed over the shards.
    """
    live = shards.refresh()
    holders: Counter[int] = Counter()
    misplaced: list[str] = []
    ids: Counter[str] = Counter()
    earned: dict[tuple[str, str], int] = defaultdict(int)
    for name, database in shards:
        with database.session() as session:
            holders.update(
                slot
                for (slot,) in session.execute(
                    text("SELECT slot FROM slot_ownership WHERE state = 'held'")
                )
            )
            misplaced.extend(
                f"{owner} on {name}, slot {live.slot_of(owner)} is {live.shard_of(owner)}'s"
                for (owner,) in session.execute(text(_OWNERS))
                if live.shard_of(owner) != name
            )
            ids.update(movement_id for (movement_id,) in session.execute(text(_MOVEMENT_IDS)))
            for merchant, currency, amount in session.execute(text(_MERCHANT_EARNINGS)):
                earned[(merchant, currency)] += int(amount)
    failures: list[Failure] = []
    not_once = [
        f"slot {slot}: {holders[slot]}" for slot in range(live.slot_count) if holders[slot] != 1
    ]
    if not_once:
        failures.append(("slot_held_once", "a slot is held by no shard or by several", not_once))
    if misplaced:
        failures.append(
            ("user_on_slot_shard", "a user's rows are not on the shard of their slot", misplaced)
        )
    doubled = [movement_id for movement_id, count in ids.items() if count > 1]
    if doubled:
        failures.append(("movement_on_one_shard", "a movement is on several shards", doubled))
    balances = merchant_balances(shards)
    wrong = [
        f"{merchant} {currency}: {balances.get((merchant, currency), 0)} != {amount}"
        for (merchant, currency), amount in earned.items()
        if balances.get((merchant, currency), 0) != amount
    ]
    if wrong:
        failures.append(
            (
                "merchant_balance_across_shards",
                "a merchant's clearing balances over the shards differ from its net payments",
                wrong,
            )
        )
    return [(check, description, samples[:20]) for check, description, samples in failures]


def check_snapshot(database: Database) -> list[tuple[str, str, list[str]]]:
    """`run_checks` in one snapshot of the database, which it leaves untouched."""
    # REPEATABLE READ on PostgreSQL so every check sees one snapshot.
    with database.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        try:
            return run_checks(session)
        finally:
            session.rollback()


def run_checks(session: Session, limit: int = 20) -> list[tuple[str, str, list[str]]]:
    """(check, description, sample of offending rows) for each broken invariant."""
    failures = []
    for name, description, query in CHECKS:
        rows = session.execute(text(f"{query} LIMIT {int(limit)}")).all()
        if rows:
            failures.append((name, description, [repr(tuple(row)) for row in rows]))
    return failures
