"""The slot map: user id -> CRC-32 hash slot -> shard, and its configuration."""

from __future__ import annotations

import json
import zlib

import pytest
from payment_service.config import PaymentSettings
from payment_service.domain.shards import (
    SlotMap,
    format_slot_ranges,
    parse_slot_ranges,
    slot_of,
)
from pydantic import ValidationError


def test_a_users_slot_is_the_crc32_of_the_id_and_never_changes():
    # A constant: every process, version and machine must agree on it, or a
    # user's money would be looked for on the wrong shard.
    assert slot_of("user-1") == zlib.crc32(b"user-1") % 1024 == 532
    assert slot_of("user-1", 4096) == zlib.crc32(b"user-1") % 4096


def test_slot_ranges_read_and_write_each_other():
    assert parse_slot_ranges("0-2, 5,7-8") == [0, 1, 2, 5, 7, 8]
    assert format_slot_ranges([8, 0, 1, 2, 5, 7]) == "0-2,5,7-8"
    with pytest.raises(ValueError, match="bad slot range"):
        parse_slot_ranges("5-2")


def test_an_even_map_gives_each_shard_one_contiguous_range():
    slot_map = SlotMap.even(["s0", "s1", "s2", "s3"])
    assert slot_map.ranges() == {"s0": "0-255", "s1": "256-511", "s2": "512-767", "s3": "768-1023"}
    assert SlotMap.from_ranges(slot_map.ranges(), 1024) == slot_map
    assert slot_map.moved(range(0, 10), "s3").ranges()["s3"] == "0-9,768-1023"


def test_a_map_must_give_every_slot_exactly_one_shard():
    with pytest.raises(ValueError, match="without a shard: 8-9"):
        SlotMap.from_ranges({"a": "0-7"}, 10)
    with pytest.raises(ValueError, match="given to a and b"):
        SlotMap.from_ranges({"a": "0-9", "b": "9"}, 10)


def test_users_spread_evenly_over_the_shards():
    slot_map = SlotMap.even(["s0", "s1", "s2", "s3"])
    counts = dict.fromkeys(slot_map.shards, 0)
    for index in range(40_000):
        counts[slot_map.shard_of(f"00000000-0000-4000-8000-{index:012d}")] += 1
    assert all(9_000 < n < 11_000 for n in counts.values()), counts


def test_no_shards_configured_is_todays_single_database():
    # As the base ConfigMap sets them: every variable present, the shard ones empty.
    settings = PaymentSettings(database_url="postgresql://db/payment", shards="", shard_map_file="")
    assert settings.shard_urls == {"s0": "postgresql://db/payment"}
    assert settings.slot_map.shards == ["s0"]


def test_bare_shard_names_get_one_sqlite_file_each(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path))
    settings = PaymentSettings(shards="s0,s1")
    assert settings.shard_urls == {
        "s0": f"sqlite:///{tmp_path.resolve() / 'payment-s0.db'}",
        "s1": f"sqlite:///{tmp_path.resolve() / 'payment-s1.db'}",
    }
    assert settings.slot_map.ranges() == {"s0": "0-511", "s1": "512-1023"}


def test_a_map_file_sets_the_initial_ranges(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"slot_count": 16, "shards": {"a": "0-3", "b": "4-15"}}))
    settings = PaymentSettings(shards="a=sqlite://,b=sqlite://", shard_map_file=path)
    assert settings.slot_map.ranges() == {"a": "0-3", "b": "4-15"}
    path.write_text(json.dumps({"slot_count": 16, "shards": {"a": "0-3", "c": "4-15"}}))
    with pytest.raises(ValidationError, match="names shards PAYMENT_SHARDS does not"):
        PaymentSettings(shards="a=sqlite://,b=sqlite://", shard_map_file=path)


def test_a_bad_shard_name_is_refused_naming_the_variable():
    with pytest.raises(ValidationError, match="shards"):
        PaymentSettings(shards="S0=sqlite://")
    with pytest.raises(ValidationError, match="named twice"):
        PaymentSettings(shards="s0,s0")
