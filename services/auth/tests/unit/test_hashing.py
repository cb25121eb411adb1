from __future__ import annotations

from auth_service.adapters.hashing import Argon2PasswordHasher

CHEAP = {"time_cost": 1, "memory_cost_kib": 64, "parallelism": 1}


def test_hashes_with_argon2id_and_verifies() -> None:
    hasher = Argon2PasswordHasher(**CHEAP)
    stored = hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hasher.verify(stored, "correct horse battery")
    assert not hasher.verify(stored, "wrong horse battery")


def test_salted() -> None:
    hasher = Argon2PasswordHasher(**CHEAP)
    assert hasher.hash("same password") != hasher.hash("same password")


def test_malformed_hash_does_not_verify() -> None:
    hasher = Argon2PasswordHasher(**CHEAP)
    assert not hasher.verify("not-a-hash", "anything")
    assert hasher.needs_rehash("not-a-hash")


def test_needs_rehash_when_parameters_change() -> None:
    old = Argon2PasswordHasher(**CHEAP)
    new = Argon2PasswordHasher(time_cost=2, memory_cost_kib=64, parallelism=1)
    stored = old.hash("correct horse battery")
    assert not old.needs_rehash(stored)
    assert new.needs_rehash(stored)
    assert new.verify(stored, "correct horse battery")


def test_dummy_hash_uses_current_parameters_and_matches_nothing() -> None:
    hasher = Argon2PasswordHasher(**CHEAP)
    assert hasher.dummy_hash is hasher.dummy_hash
    assert not hasher.needs_rehash(hasher.dummy_hash)
    assert not hasher.verify(hasher.dummy_hash, "")
