"""Brute-force protection for logins that punishes the attacker, not the owner.

Three counters, each with exponential backoff past its free failures and no
permanent lockout (after Auth0's brute-force protection):

- (account, address): one address guessing one account's password. Always
  applies, also to an address the owner has signed in from.
- address: one address failing across accounts (credential stuffing). Its
  block refuses that address only for accounts it has never signed in to.
- account: every address together failing one account (distributed guessing),
  with a much higher budget. Its block refuses the account only at addresses
  that have never signed in to it.

An address that signed in to an account is *known* for that account for
`known_address_seconds`: its failures there count only on its own
(account, address) counter, and the address-wide and account-wide blocks
pass it by. So failures for other accounts never block an owner at an
address they use, and an attacker's guesses from elsewhere never lock the
owner out of an address they use.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from auth_service.domain.errors import LoginThrottled
from auth_service.service_layer.ports import AttemptStore

# What a call without a client address (not through the gateway) counts as:
# all of them share one pseudo-address, so they are still throttled.
NO_ADDRESS = "-"
# Longest address kept in a key (the gateway sends an IP address; anything
# longer is not one, and must not grow the key).
MAX_ADDRESS_LENGTH = 64


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free per counter, and how the wait grows after them.

    After `free` failures of a counter, each further one blocks it for
    `backoff_base_seconds * 2**(failures - free)`, at most
    `backoff_max_seconds`. The (account, address) and address counters
    forget `failure_window_seconds` after their last failure; the
    account-wide counter forgets that long after its *first* failure (a fixed
    window), so one address's slow, backed-off guessing (at most about 110 a
    day with the defaults) never adds up to the account-wide budget.
    """

    account_address_free_failures: int = 5
    address_free_failures: int = 20
    account_free_failures: int = 200
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 900.0
    failure_window_seconds: float = 86_400.0
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


@dataclass(frozen=True)
class _Counter:
    key: str
    free: int
    # A fixed window starts at the first failure; a sliding one at the last.
    fixed_window: bool = False


class LoginThrottle:
    """Example::

    throttle = LoginThrottle(InProcessAttemptStore(), ThrottlePolicy())
    throttle.check("ann@example.com", "203.0.113.9")     # raises LoginThrottled when blocked
    throttle.failed("ann@example.com", "203.0.113.9")
    throttle.succeeded("ann@example.com", "192.0.2.10")  # 192.0.2.10 is now known for ann
    """

    def __init__(self, store: AttemptStore, policy: ThrottlePolicy) -> None:
        self.store = store
        self.policy = policy

    def _counters(self, email: str, address: str | None) -> list[_Counter]:
        account = account_key(email)
        where = (address or NO_ADDRESS)[:MAX_ADDRESS_LENGTH]
        counters = [_Counter(f"pair:{account}:{where}", self.policy.account_address_free_failures)]
        if not self.store.is_remembered(_known_key(account, where)):
            counters.append(_Counter(f"address:{where}", self.policy.address_free_failures))
            counters.append(_Counter(account, self.policy.account_free_failures, fixed_window=True))
        return counters

    def check(self, email: str, address: str | None) -> None:
        """Raise LoginThrottled (with the wait) when this account must wait at this address."""
        wait = self.store.blocked_for([counter.key for counter in self._counters(email, address)])
        if wait > 0:
            raise LoginThrottled(retry_after_seconds=max(1, math.ceil(wait)))

    def failed(self, email: str, address: str | None) -> None:
        for counter in self._counters(email, address):
            count = self.store.add_failure(
                counter.key, self.policy.failure_window_seconds, sliding=not counter.fixed_window
            )
            delay = self.policy.backoff(count, counter.free)
            if delay > 0:
                self.store.block(counter.key, delay)

    def succeeded(self, email: str, address: str | None) -> None:
        """The address proved it knows the password: its own counter starts
        again, and it is known for this account from now on. The address-wide
        and account-wide counters are left alone: a stuffing list with a few
        valid entries must not wipe its own trail."""
        account = account_key(email)
        where = (address or NO_ADDRESS)[:MAX_ADDRESS_LENGTH]
        self.store.reset(f"pair:{account}:{where}")
        if self.policy.known_address_seconds > 0 and address:
            self.store.remember(_known_key(account, where), self.policy.known_address_seconds)


def _known_key(account: str, address: str) -> str:
    return f"known:{account}:{address}"
