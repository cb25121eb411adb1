"""A bounded pool for password hashing, so a burst of signups or logins is
shed instead of taking every server thread from the cheap RPCs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from auth_service.domain.errors import PasswordHashingBusy
from auth_service.service_layer.ports import PasswordHasher

T = TypeVar("T")


class BoundedHasher:
    """A PasswordHasher whose hash and verify run at most `workers` at once.

    Up to `queue` more callers wait, each at most `queue_timeout_seconds`;
    any caller beyond that, or one that waited too long, gets
    PasswordHashingBusy (RESOURCE_EXHAUSTED, HTTP 429 + Retry-After) at once.
    The hashing runs on the caller's server thread: what is bounded is how
    many of those threads hashing can hold (`workers + queue`), which the
    settings keep below the server's thread count.

    Example::

        hasher = BoundedHasher(Argon2PasswordHasher(...), workers=2, queue=4,
                               queue_timeout_seconds=1.0)
        hasher.hash("correct horse battery staple")   # or PasswordHashingBusy
    """

    def __init__(
        self, inner: PasswordHasher, *, workers: int, queue: int, queue_timeout_seconds: float
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("a hashing pool needs at least one worker and a queue of 0 or more")
        self._inner = inner
        self._slots = threading.BoundedSemaphore(workers)
        self._admitted = 0
        self._capacity = workers + queue
        self._timeout = queue_timeout_seconds
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        """Callers hashing or waiting to hash now."""
        with self._lock:
            return self._admitted

    def _run(self, work: Callable[[], T]) -> T:
        with self._lock:
            if self._admitted >= self._capacity:
                raise PasswordHashingBusy
            self._admitted += 1
        try:
            if not self._slots.acquire(timeout=self._timeout):
                raise PasswordHashingBusy
            try:
                return work()
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._admitted -= 1

    def hash(self, password: str) -> str:
        return self._run(lambda: self._inner.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        return self._run(lambda: self._inner.verify(password_hash, password))

    def needs_rehash(self, password_hash: str) -> bool:
        # Parses the PHC string's parameters only: cheap, not bounded.
        return self._inner.needs_rehash(password_hash)

    @property
    def dummy_hash(self) -> str:
        # Made once per process (the first unknown-email login pays it).
        return self._inner.dummy_hash
