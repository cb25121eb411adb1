"""The payment shards: one kit `Database` per shard, and the router that sends a
user's transactions to the shard holding the user's slot.

The live slot map is where the data is: each shard's `slot_ownership` table
lists the slots it holds, with an epoch that grows each time a slot moves. A
router caches the map and re-reads it from every shard when a shard says it
no longer holds a slot (after `reshard` moved it); during a hand-over a slot
is held by no shard for a moment (writers wait), never by two. With one shard there
is nothing to route and nothing is checked: today's behaviour.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session
from switchyard_kit import Database

from payment_service.adapters import tables as t
from payment_service.domain.shards import SlotMap

logger = logging.getLogger("payment.shards")

# slot_ownership.state: the shard holds the slot / a copy is arriving (nobody's yet).
HELD = "held"
INCOMING = "incoming"


class ShardSet:
    """`shards.route(user_id)` -> (shard name, its Database).

    Example::

        shards = ShardSet({"s0": Database(url0), "s1": Database(url1)}, SlotMap.even(["s0", "s1"]))
        name, database = shards.route(user_id)
    """

    def __init__(self, databases: Mapping[str, Database], slot_map: SlotMap) -> None:
        if set(slot_map.shards) - set(databases):
            raise ValueError(f"the slot map names unknown shards: {slot_map.shards}")
        self.databases = dict(databases)
        self._map = slot_map
        self._lock = threading.Lock()

    @property
    def sharded(self) -> bool:
        """More than one shard: slots are checked and may move."""
        return len(self.databases) > 1

    @property
    def slot_map(self) -> SlotMap:
        return self._map

    def __iter__(self) -> Iterator[tuple[str, Database]]:
        return iter(self.databases.items())

    def slot_of(self, user_id: str) -> int:
        return self._map.slot_of(user_id)

    def route(self, user_id: str) -> tuple[str, Database]:
        name = self._map.shard_of(user_id)
        return name, self.databases[name]

    def refresh(self) -> SlotMap:
        """Re-read the live map from every shard (the highest epoch wins; a slot
        no shard holds keeps its cached owner). Called when a shard said no."""
        best: dict[int, tuple[int, str]] = {}
        for name, database in self.databases.items():
            with database.session() as session:
                for slot, epoch in session.execute(
                    select(t.slot_ownership.c.slot, t.slot_ownership.c.epoch).where(
                        t.slot_ownership.c.state == HELD
                    )
                ):
                    if slot not in best or epoch > best[slot][0]:
                        best[slot] = (epoch, name)
        owners = list(self._map.owners)
        for slot, (_, name) in best.items():
            if slot < len(owners):
                owners[slot] = name
        with self._lock:
            self._map = SlotMap(tuple(owners))
        return self._map

    def seed_ownership(self) -> bool:
        """Write the configured map into the shards' slot_ownership tables,
        once: True if it did, False when some shard holds slots already (the
        live map then stays as `reshard` left it)."""
        if not self.sharded:
            return False
        for _, database in self:
            with database.session() as session:
                if session.execute(select(t.slot_ownership.c.slot).limit(1)).first():
                    return False
        for name, database in self:
            slots = self._map.slots_of(name)
            with database.session() as session, session.begin():
                if slots:
                    session.execute(
                        t.slot_ownership.insert(),
                        [{"slot": slot, "state": HELD, "epoch": 1} for slot in slots],
                    )
        logger.info("slot map seeded", extra={"shards": self._map.ranges()})
        return True

    def ping(self) -> bool:
        """Ready only when every shard answers: a user's shard is not optional."""
        return all(database.ping() for _, database in self)

    def dispose(self) -> None:
        for _, database in self:
            database.dispose()


def holds_slot(session: Session, slot: int) -> bool:
    """Whether this shard holds `slot` now; on PostgreSQL the row stays locked
    FOR KEY SHARE until the transaction ends, so `reshard` (FOR UPDATE, then
    DELETE) waits for this transaction and this transaction waits while the
    slot is frozen. KEY SHARE is the weakest row lock that still conflicts
    with both."""
    statement = select(t.slot_ownership.c.epoch).where(
        t.slot_ownership.c.slot == slot, t.slot_ownership.c.state == HELD
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(read=True, key_share=True)
    return session.execute(statement).first() is not None
