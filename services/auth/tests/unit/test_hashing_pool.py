"""The bounded hashing pool: at most `workers` hashes at once, `queue` more
waiting, the rest refused at once with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from auth_service.domain.errors import PasswordHashingBusy
from auth_service.service_layer.hashing_pool import BoundedHasher

from .conftest import FakeHasher


class HeldHasher(FakeHasher):
    """Hashes only once `release` is set, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()
        self.release.set()  # the dummy hash made in __init__ is not held
        super().__init__()
        self.release.clear()
        self.most_running = 0

    def hash(self, password: str) -> str:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.release.wait(5)
        with self._lock:
            self.running -= 1
        return super().hash(password)


def wait_until(condition, timeout: float = 5.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        pause.wait(0.01)
    assert condition()


def test_beyond_the_workers_and_the_queue_a_caller_is_refused_at_once() -> None:
    inner = HeldHasher()
    pool = BoundedHasher(inner, workers=2, queue=1, queue_timeout_seconds=5)
    with ThreadPoolExecutor(3) as executor:
        admitted = [executor.submit(pool.hash, "a long passphrase") for _ in range(3)]
        wait_until(lambda: pool.in_use == 3)
        with pytest.raises(PasswordHashingBusy) as caught:
            pool.hash("a long passphrase")
        assert caught.value.code == "RESOURCE_EXHAUSTED"
        assert caught.value.retry_after_seconds >= 1
        inner.release.set()
        hashes = [future.result(5) for future in admitted]
    assert len(hashes) == 3
    assert inner.most_running == 2  # the third waited its turn
    assert pool.in_use == 0


def test_a_caller_that_waits_longer_than_the_queue_timeout_is_refused() -> None:
    inner = HeldHasher()
    pool = BoundedHasher(inner, workers=1, queue=1, queue_timeout_seconds=0.1)
    with ThreadPoolExecutor(1) as executor:
        holder = executor.submit(pool.hash, "a long passphrase")
        wait_until(lambda: inner.running == 1)
        with pytest.raises(PasswordHashingBusy):
            pool.verify(inner.dummy_hash, "a long passphrase")
        inner.release.set()
        holder.result(5)
    assert pool.verify(inner.dummy_hash, "x") is False  # free again


def test_rehash_checks_and_the_dummy_hash_pass_through_unbounded() -> None:
    inner = HeldHasher()
    pool = BoundedHasher(inner, workers=1, queue=0, queue_timeout_seconds=0.1)
    assert pool.dummy_hash == inner.dummy_hash
    assert pool.needs_rehash("v0$salt$digest") is True
