"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import logging
import secrets
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)


class Argon2PasswordHasher:
    """argon2id with explicit cost parameters (OWASP: m=19 MiB, t=2, p=1).

    Example::

        hasher = Argon2PasswordHasher(time_cost=2, memory_cost_kib=19_456, parallelism=1)
        stored = hasher.hash("correct horse battery staple")
        hasher.verify(stored, "correct horse battery staple")   # True
    """

    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            logger.error("stored password hash cannot be verified")
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    @cached_property
    def dummy_hash(self) -> str:
        # Made once per process with today's parameters, from a password no
        # one knows, so verifying against it costs what a real check costs.
        return self._hasher.hash(secrets.token_urlsafe(32))
