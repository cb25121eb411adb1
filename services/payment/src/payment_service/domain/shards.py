"""Which shard holds a user's money: user id -> hash slot -> shard.

A fixed number of slots (1024 by default), like Redis Cluster's 16384 slots or
Vitess's keyspace ids: the user id's CRC-32 picks a slot, and the slot map
says which shard holds that slot. The hash never changes, so moving users
between shards means moving whole slots and changing only the map.

Why CRC-32: it is in the standard library (zlib), fast, stable across
processes, Python versions and machines (unlike `hash()`, which is salted per
process), and spreads UUID-like ids evenly enough over 1024 slots; nothing
here needs a cryptographic hash. Why 1024 slots: fine enough to spread load
over up to a few hundred shards and move ~0.1 % of the users at a time, small
enough that the whole map is a few ranges in a ConfigMap.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

DEFAULT_SLOT_COUNT = 1024


def slot_of(user_id: str, slot_count: int = DEFAULT_SLOT_COUNT) -> int:
    """The hash slot of a user (0 <= slot < slot_count)."""
    return zlib.crc32(user_id.encode()) % slot_count


def parse_slot_ranges(text: str) -> list[int]:
    """'0-255,512,600-601' -> [0, ..., 255, 512, 600, 601]. ValueError when malformed."""
    slots: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if low < 0 or high < low:
            raise ValueError(f"bad slot range {part!r}")
        slots.extend(range(low, high + 1))
    return slots


def format_slot_ranges(slots: Iterable[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (the inverse of parse_slot_ranges)."""
    ranges: list[str] = []
    runs: list[list[int]] = []
    for slot in sorted(set(slots)):
        if runs and slot == runs[-1][1] + 1:
            runs[-1][1] = slot
        else:
            runs.append([slot, slot])
    for low, high in runs:
        ranges.append(str(low) if low == high else f"{low}-{high}")
    return ",".join(ranges)


@dataclass(frozen=True)
class SlotMap:
    """slot -> shard name, for every slot 0..slot_count-1.

    Example::

        slot_map = SlotMap.even(["s0", "s1"])      # s0: slots 0-511, s1: 512-1023
        slot_map.shard_of("3f0c...")               # "s0" or "s1"
    """

    owners: tuple[str, ...]

    @property
    def slot_count(self) -> int:
        return len(self.owners)

    @property
    def shards(self) -> list[str]:
        """The shard names in order of first appearance."""
        return list(dict.fromkeys(self.owners))

    @classmethod
    def even(cls, shards: Sequence[str], slot_count: int = DEFAULT_SLOT_COUNT) -> SlotMap:
        """Contiguous, equal ranges of slots, in the order the shards are named."""
        if not shards:
            raise ValueError("at least one shard")
        return cls(tuple(shards[slot * len(shards) // slot_count] for slot in range(slot_count)))

    @classmethod
    def from_ranges(cls, ranges: Mapping[str, str], slot_count: int) -> SlotMap:
        """{"s0": "0-511", "s1": "512-1023"}: every slot named exactly once."""
        owners: list[str | None] = [None] * slot_count
        for shard, text in ranges.items():
            for slot in parse_slot_ranges(text):
                if slot >= slot_count:
                    raise ValueError(f"slot {slot} is beyond {slot_count - 1}")
                if owners[slot] is not None:
                    raise ValueError(f"slot {slot} is given to {owners[slot]} and {shard}")
                owners[slot] = shard
        missing = [slot for slot, owner in enumerate(owners) if owner is None]
        if missing:
            raise ValueError(f"slots without a shard: {format_slot_ranges(missing)}")
        return cls(tuple(owner for owner in owners if owner is not None))

    def slot_of(self, user_id: str) -> int:
        return slot_of(user_id, self.slot_count)

    def shard_of(self, user_id: str) -> str:
        return self.owners[self.slot_of(user_id)]

    def slots_of(self, shard: str) -> list[int]:
        return [slot for slot, owner in enumerate(self.owners) if owner == shard]

    def ranges(self) -> dict[str, str]:
        """{shard: '0-255,...'}: the map as `from_ranges` reads it."""
        return {shard: format_slot_ranges(self.slots_of(shard)) for shard in self.shards}

    def moved(self, slots: Iterable[int], to: str) -> SlotMap:
        """This map with `slots` given to shard `to`."""
        owners = list(self.owners)
        for slot in slots:
            owners[slot] = to
        return SlotMap(tuple(owners))
