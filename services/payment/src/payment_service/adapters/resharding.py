"""Moving hash slots between shards while payments keep flowing.

One slot at a time, so only that slot's users ever wait:

1. Freeze: on the source, lock the slot's slot_ownership row FOR UPDATE. Every
   transaction of a user in the slot holds that row FOR KEY SHARE first
   (`adapters.shards.holds_slot`), so the lock waits for the ones in flight,
   and new ones wait behind it. The pause of the slot starts here.
2. Copy, in one target transaction: the slot's users' rows (wallets and their
   balances, payments and items, refunds, top-ups, ledger transactions and
   entries, idempotency keys, outbox rows, with their order kept) and the
   slot's ownership row as "incoming", which routes nobody.
3. Verify, still in the target transaction: per table, the count of rows and
   the sum of the amounts read back equal what the source holds. Any
   difference rolls the target back and leaves the source as it was.
4. Commit the target, then delete the copied rows and the ownership row on
   the source and commit: the waiting writers find the slot gone, re-read the
   map and find it...
5. ...held on the target: its row goes from "incoming" to "held" with the next
   epoch. The pause ends.

No distributed transaction: a crash between 4's two commits leaves an
"incoming" copy on the target while the source still holds the slot (writers
carry on there); between 4 and 5 it leaves the slot held by nobody (writers
wait, then ABORTED). Running the same command again resumes: it drops a stale
incoming copy and starts over, or finishes the hand-over.

Unsent outbox rows of the slot are locked on the source (waiting for a relay
batch in flight) and copied unsent, so the target's relay publishes them, in
order, after the events the source's relay already published: per-user order
holds, and the source never publishes them (they are locked, then deleted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Select, Table, delete, insert, select, text, update
from sqlalchemy.orm import Session

from payment_service.adapters import tables as t
from payment_service.adapters.batcher import insert_target
from payment_service.adapters.shards import HELD, INCOMING, ShardSet
from payment_service.domain.shards import SlotMap

logger = logging.getLogger("payment.reshard")

# Keys per IN (...) list: PostgreSQL takes at most 65535 parameters a statement.
CHUNK = 1000
# Everyone whose money a shard holds (every row of a user's money names the user).
_OWNERS = (
    "SELECT owner FROM accounts WHERE kind = 'wallet'"
    " UNION SELECT user_id FROM idempotency_keys UNION SELECT user_id FROM payments"
    " UNION SELECT user_id FROM top_ups"
)


class ReshardError(RuntimeError):
    """The move cannot go on (nothing was switched for the slot it names)."""


@dataclass
class SlotRows:
    """A slot's users' rows on one shard, table by table, in insert order."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def digest(self) -> dict[str, tuple[int, int]]:
        """{table: (row count, sum of its amount column or 0)}: what verify compares."""
        return {
            name: (len(rows), sum(int(row.get("amount", 0) or 0) for row in rows))
            for name, rows in self.tables.items()
        }

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@dataclass(frozen=True)
class SlotMove:
    """What moving one slot did: its users, rows, and how long writers waited."""

    slot: int
    source: str
    target: str
    users: int
    rows: int
    pause_seconds: float


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _select_in(
    session: Session, table: Table, column: Column[Any], values: Sequence[Any], order: Column[Any]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(values):
        statement: Select[Any] = select(table).where(column.in_(chunk))
        rows.extend(dict(row) for row in session.execute(statement).mappings())
    return sorted(rows, key=lambda row: row[order.name])


def slot_users(session: Session, slot_map: SlotMap, slot: int) -> list[str]:
    """The users of `slot` whose money this shard holds (a full scan of the
    owners: the slot is not stored, it is the CRC-32 of the user id)."""
    return sorted(
        owner for (owner,) in session.execute(text(_OWNERS)) if slot_map.slot_of(owner) == slot
    )


def read_slot_rows(session: Session, users: Sequence[str]) -> SlotRows:
    """Every row of these users' money, table by table, parents before children."""
    payments = _select_in(session, t.payments, t.payments.c.user_id, users, t.payments.c.id)
    payment_ids = [row["id"] for row in payments]
    refunds = _select_in(session, t.refunds, t.refunds.c.user_id, users, t.refunds.c.id)
    top_ups = _select_in(session, t.top_ups, t.top_ups.c.user_id, users, t.top_ups.c.id)
    references = payment_ids + [row["id"] for row in refunds] + [row["id"] for row in top_ups]
    transactions = _select_in(
        session,
        t.ledger_transactions,
        t.ledger_transactions.c.reference_id,
        references,
        t.ledger_transactions.c.id,
    )
    entries = _select_in(
        session,
        t.ledger_entries,
        t.ledger_entries.c.transaction_id,
        [row["id"] for row in transactions],
        t.ledger_entries.c.id,
    )
    wallets = [
        row
        for row in _select_in(session, t.accounts, t.accounts.c.owner, users, t.accounts.c.id)
        if row["kind"] == "wallet"
    ]
    wallet_ids = {row["id"] for row in wallets}
    # The clearing and funding accounts the entries touch: on every shard under
    # the same id, copied if the target has none yet, never deleted.
    shared_ids = sorted({row["account_id"] for row in entries} - wallet_ids)
    shared = _select_in(session, t.accounts, t.accounts.c.id, shared_ids, t.accounts.c.id)
    return SlotRows(
        {
            "wallets": wallets,
            "shared_accounts": shared,
            "balances": _select_in(
                session,
                t.balances,
                t.balances.c.account_id,
                sorted(wallet_ids),
                t.balances.c.account_id,
            ),
            "ledger_transactions": transactions,
            "ledger_entries": entries,
            "payments": payments,
            "payment_items": _select_in(
                session,
                t.payment_items,
                t.payment_items.c.payment_id,
                payment_ids,
                t.payment_items.c.payment_id,
            ),
            "refunds": refunds,
            "top_ups": top_ups,
            "idempotency_keys": _select_in(
                session,
                t.idempotency_keys,
                t.idempotency_keys.c.user_id,
                users,
                t.idempotency_keys.c.key,
            ),
            "outbox": _select_in(session, t.outbox, t.outbox.c.key, users, t.outbox.c.id),
        }
    )


# Where each part of SlotRows is written; serial ids are left to the target so
# they follow its own sequence (rows keep their relative order: inserted in it).
_TARGETS: list[tuple[str, Table, tuple[str, ...]]] = [
    ("wallets", t.accounts, ()),
    ("balances", t.balances, ()),
    ("ledger_transactions", t.ledger_transactions, ()),
    ("ledger_entries", t.ledger_entries, ("id",)),
    ("payments", t.payments, ()),
    ("payment_items", t.payment_items, ()),
    ("refunds", t.refunds, ()),
    ("top_ups", t.top_ups, ()),
    ("idempotency_keys", t.idempotency_keys, ()),
    ("outbox", t.outbox, ("id",)),
]


_SHARED_ACCOUNTS = insert_target(t.accounts, skip_existing=True)


def write_slot_rows(session: Session, rows: SlotRows) -> None:
    """Insert `rows` (read on another shard) into this one."""
    shared = rows.tables["shared_accounts"]
    if shared:
        # Skipped where there already: payments on this shard may be creating
        # the same merchant's account at this moment (insert_target says why
        # on any of its unique keys).
        session.execute(_SHARED_ACCOUNTS.alone[session.get_bind().dialect.name], shared)
    for name, table, dropped in _TARGETS:
        batch = [
            {key: value for key, value in row.items() if key not in dropped}
            for row in rows.tables[name]
        ]
        for chunk in _chunks(batch):
            session.execute(insert(table), list(chunk))


def delete_slot_rows(session: Session, rows: SlotRows) -> None:
    """Delete `rows` from this shard, children before parents (shared accounts stay)."""
    by_key: list[tuple[str, Column[Any], str]] = [
        ("outbox", t.outbox.c.id, "id"),
        ("idempotency_keys", t.idempotency_keys.c.user_id, "user_id"),
        ("ledger_entries", t.ledger_entries.c.id, "id"),
        ("ledger_transactions", t.ledger_transactions.c.id, "id"),
        ("refunds", t.refunds.c.id, "id"),
        ("payment_items", t.payment_items.c.payment_id, "payment_id"),
        ("payments", t.payments.c.id, "id"),
        ("top_ups", t.top_ups.c.id, "id"),
        ("balances", t.balances.c.account_id, "account_id"),
        ("wallets", t.accounts.c.id, "id"),
    ]
    for name, column, key in by_key:
        values = sorted({row[key] for row in rows.tables[name]})
        for chunk in _chunks(values):
            session.execute(delete(column.table).where(column.in_(chunk)))


def _ownership(session: Session, slot: int, *, lock: bool = False) -> tuple[str, int] | None:
    statement = select(t.slot_ownership.c.state, t.slot_ownership.c.epoch).where(
        t.slot_ownership.c.slot == slot
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = session.execute(statement).first()
    return None if row is None else (str(row[0]), int(row[1]))


def _lock_unsent_outbox(session: Session, users: Sequence[str]) -> None:
    """Wait for a relay batch in flight over these users' events, and keep the
    source's relay off them until the source commits (it skips locked rows and
    stands by behind them, so nothing is published out of order)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for chunk in _chunks(users):
        session.execute(
            select(t.outbox.c.id)
            .where(t.outbox.c.key.in_(chunk), t.outbox.c.sent_at.is_(None))
            .with_for_update()
        ).all()


def _holder(shards: ShardSet, slot: int) -> tuple[str | None, dict[str, tuple[str, int]]]:
    """The shard holding `slot` (None if none does) and every shard's row for it."""
    rows: dict[str, tuple[str, int]] = {}
    for name, database in shards:
        with database.session() as session:
            found = _ownership(session, slot)
            if found is not None:
                rows[name] = found
    held = [name for name, (state, _) in rows.items() if state == HELD]
    if len(held) > 1:
        raise ReshardError(f"slot {slot} is held by {held}: repair by hand before moving it")
    return (held[0] if held else None), rows


def _finish_handover(shards: ShardSet, slot: int, target: str) -> None:
    with shards.databases[target].session() as session, session.begin():
        session.execute(
            update(t.slot_ownership)
            .where(t.slot_ownership.c.slot == slot, t.slot_ownership.c.state == INCOMING)
            .values(state=HELD)
        )


def _drop_stale_copy(shards: ShardSet, slot: int, name: str, slot_map: SlotMap) -> None:
    """An incoming copy left by a move that never committed on the source:
    the source still holds the slot, so the copy goes."""
    with shards.databases[name].session() as session, session.begin():
        found = _ownership(session, slot, lock=True)
        if found is None or found[0] != INCOMING:
            return
        delete_slot_rows(session, read_slot_rows(session, slot_users(session, slot_map, slot)))
        session.execute(delete(t.slot_ownership).where(t.slot_ownership.c.slot == slot))
    logger.warning("dropped a stale incoming copy", extra={"slot": slot, "shard": name})


def move_slot(shards: ShardSet, slot: int, target: str) -> SlotMove | None:
    """Move one slot to `target` (see the module's steps); None when it is there already."""
    if target not in shards.databases:
        raise ReshardError(f"no shard named {target!r}")
    slot_map = shards.refresh()
    holder, rows = _holder(shards, slot)
    for name, (state, _) in rows.items():
        if state == INCOMING and holder is not None:
            _drop_stale_copy(shards, slot, name, slot_map)
        elif state == INCOMING:
            _finish_handover(shards, slot, name)
            holder = name
            logger.warning("finished an interrupted hand-over", extra={"slot": slot, "shard": name})
    if holder is None:
        raise ReshardError(f"no shard holds slot {slot}")
    if holder == target:
        return None
    source_db, target_db = shards.databases[holder], shards.databases[target]
    with source_db.session() as source:
        frozen = _ownership(source, slot, lock=True)
        began = time.monotonic()
        if frozen is None or frozen[0] != HELD:
            raise ReshardError(f"slot {slot} left {holder} while the move started; run it again")
        users = slot_users(source, slot_map, slot)
        _lock_unsent_outbox(source, users)
        moving = read_slot_rows(source, users)
        with target_db.session() as copy, copy.begin():
            copy.execute(
                insert(t.slot_ownership).values(slot=slot, state=INCOMING, epoch=frozen[1] + 1)
            )
            write_slot_rows(copy, moving)
            copied = read_slot_rows(copy, users).digest()
            if copied != moving.digest():
                raise ReshardError(
                    f"slot {slot}: the copy on {target} differs: {copied} != {moving.digest()}"
                )
        delete_slot_rows(source, moving)
        source.execute(delete(t.slot_ownership).where(t.slot_ownership.c.slot == slot))
        source.commit()
    _finish_handover(shards, slot, target)
    pause = time.monotonic() - began
    shards.refresh()
    logger.info(
        "slot moved",
        extra={
            "slot": slot,
            "from": holder,
            "to": target,
            "users": len(users),
            "pause_ms": round(pause * 1000, 1),
        },
    )
    return SlotMove(slot, holder, target, len(users), moving.row_count, pause)


def move_slots(shards: ShardSet, slots: Iterable[int], target: str) -> list[SlotMove]:
    """Move each slot in turn (each frozen only while it moves)."""
    moves = []
    for slot in slots:
        moved = move_slot(shards, slot, target)
        if moved is not None:
            moves.append(moved)
    return moves
