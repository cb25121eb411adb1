"""Brute-force protection for logins: failed attempts counted per account and
per client address, with exponential backoff and no permanent lockout."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from auth_service.domain.errors import LoginThrottled
from auth_service.service_layer.ports import AttemptStore


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free, and how the wait grows after them.

    After `account_free_failures` failures of one account (or
    `address_free_failures` from one address), each further failure blocks
    that key for `backoff_base_seconds * 2**(extra failures)`, at most
    `backoff_max_seconds`. Counters forget `failure_window_seconds` after the
    last failure, and a success resets the account's.
    """

    account_free_failures: int = 5
    address_free_failures: int = 20
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 900.0
    failure_window_seconds: float = 86_400.0
    # An address that signed in to an account is "known" for this long: the
    # account-wide block does not apply to it (it has its own counter), so an
    # attacker elsewhere cannot lock the owner out of their usual address.
    known_address_seconds: float = 30 * 86_400.0

    def backoff(self, failures: int, free: int) -> float:
        if failures < free:
            return 0.0
        exponent = min(failures - free, 32)
        return float(min(self.backoff_max_seconds, self.backoff_base_seconds * 2**exponent))


def account_key(email: str) -> str:
    """The counter key of an account: a hash of the (normalised) address, so
    Redis never holds the email itself, and unknown emails count alike."""
    return "account:" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:40]


class LoginThrottle:
    """Example::

    throttle = LoginThrottle(InProcessAttemptStore(), ThrottlePolicy())
    throttle.check("ann@example.com", "203.0.113.9")     # raises LoginThrottled when blocked
    throttle.failed("ann@example.com", "203.0.113.9")
    """

    def __init__(self, store: AttemptStore, policy: ThrottlePolicy) -> None:
        self.store = store
        self.policy = policy

    def _keys(self, email: str, address: str | None) -> list[tuple[str, int]]:
        account = account_key(email)
        keys: list[tuple[str, int]] = []
        if address:
            keys.append((f"address:{address}", self.policy.address_free_failures))
            if self.store.blocked_for([f"known:{account}:{address}"]) > 0:
                # A known address gets its own account counter, not the shared one.
                keys.append((f"{account}:{address}", self.policy.account_free_failures))
                return keys
        keys.append((account, self.policy.account_free_failures))
        return keys

    def check(self, email: str, address: str | None) -> None:
        """Raise LoginThrottled (with the wait) when this account or address must wait."""
        wait = self.store.blocked_for([key for key, _ in self._keys(email, address)])
        if wait > 0:
            raise LoginThrottled(retry_after_seconds=max(1, math.ceil(wait)))

    def failed(self, email: str, address: str | None) -> None:
        for key, free in self._keys(email, address):
            count = self.store.add_failure(key, self.policy.failure_window_seconds)
            delay = self.policy.backoff(count, free)
            if delay > 0:
                self.store.block(key, delay)

    def succeeded(self, email: str, address: str | None) -> None:
        account = account_key(email)
        self.store.reset(account)
        if address:
            self.store.reset(f"{account}:{address}")
            self.store.block(f"known:{account}:{address}", self.policy.known_address_seconds)
