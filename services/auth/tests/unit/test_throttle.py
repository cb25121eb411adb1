"""Brute-force protection: (account, address), address-wide and account-wide
counters with backoff, known addresses keeping their own budget, no
permanent lockout (fixture policy: 3 per pair, 5 per address, 12 per account)."""

from __future__ import annotations

import pytest
from auth_service.adapters.throttling import InProcessAttemptStore
from auth_service.domain.errors import InvalidCredentials, LoginThrottled
from auth_service.service_layer.handlers import ClientInfo, Login, SignUp
from auth_service.service_layer.throttle import ThrottlePolicy

from .conftest import FakeMonotonic

PASSWORD = "a long passphrase"


def fail(auth, email: str, address: str = "203.0.113.9") -> None:
    with pytest.raises(InvalidCredentials):
        auth.login(Login(email, "wrong password", ClientInfo(address)))


def log_in(auth, email: str, address: str) -> None:
    auth.login(Login(email, PASSWORD, ClientInfo(address)))


def test_backoff_doubles_and_is_capped() -> None:
    policy = ThrottlePolicy(backoff_base_seconds=1, backoff_max_seconds=60)
    assert [policy.backoff(n, 3) for n in (1, 2, 3, 4, 5, 9, 40)] == [0, 0, 1, 2, 4, 60, 60]


def test_brute_force_on_one_account_from_one_address_is_throttled_then_the_password_works(
    auth, clock, database
) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    for _ in range(3):
        fail(auth, "ann@example.com")
    with pytest.raises(LoginThrottled) as caught:
        log_in(auth, "ann@example.com", "203.0.113.9")
    assert caught.value.retry_after_seconds == 1
    assert caught.value.code == "RESOURCE_EXHAUSTED"
    clock.advance(1)
    log_in(auth, "ann@example.com", "203.0.113.9")
    assert {"login_failed", "login_throttled", "login_succeeded"} <= set(database.audit_types())


def test_a_known_address_still_has_a_budget_of_its_own(auth) -> None:
    # Knowing an address is no licence to guess from it without limit.
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    log_in(auth, "ann@example.com", "192.0.2.10")
    for _ in range(3):
        fail(auth, "ann@example.com", "192.0.2.10")
    with pytest.raises(LoginThrottled):
        log_in(auth, "ann@example.com", "192.0.2.10")


def test_another_account_is_not_affected(auth) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    auth.sign_up(SignUp("bob@example.com", PASSWORD))
    for _ in range(3):
        fail(auth, "ann@example.com", "203.0.113.1")
    log_in(auth, "bob@example.com", "203.0.113.1")


def test_unknown_emails_are_counted_like_known_ones(auth) -> None:
    for _ in range(3):
        fail(auth, "nobody@example.com")
    with pytest.raises(LoginThrottled):
        auth.login(Login("nobody@example.com", "x", ClientInfo("203.0.113.9")))


def test_one_address_failing_many_accounts_is_throttled_for_accounts_it_does_not_know(
    auth,
) -> None:
    for n in range(5):
        fail(auth, f"user{n}@example.com", "198.51.100.7")
    with pytest.raises(LoginThrottled):
        auth.login(Login("fresh@example.com", "x", ClientInfo("198.51.100.7")))


def test_failures_for_other_accounts_never_block_an_owner_who_logged_in_from_there(
    auth, clock
) -> None:
    # Before: the address counter blocked every account's login from it.
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    log_in(auth, "ann@example.com", "198.51.100.7")  # an office NAT she uses
    stuffed = 0
    for n in range(40):
        try:
            fail(auth, f"user{n}@example.com", "198.51.100.7")
            stuffed += 1
        except LoginThrottled:
            pass
    assert stuffed == 5  # the address is blocked for accounts it does not know
    log_in(auth, "ann@example.com", "198.51.100.7")


def test_signing_up_makes_the_address_known(auth) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD, client=ClientInfo("198.51.100.7")))
    for n in range(10):
        with pytest.raises((InvalidCredentials, LoginThrottled)):
            auth.login(Login(f"user{n}@example.com", "x", ClientInfo("198.51.100.7")))
    log_in(auth, "ann@example.com", "198.51.100.7")


def test_an_attackers_guesses_from_one_address_do_not_lock_the_owner_out_elsewhere(
    auth,
) -> None:
    # Before: 7 wrong passwords from one address blocked the account at
    # every address the owner had not signed in from.
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    for _ in range(7):
        with pytest.raises((InvalidCredentials, LoginThrottled)):
            auth.login(Login("ann@example.com", "wrong password", ClientInfo("203.0.113.66")))
    log_in(auth, "ann@example.com", "192.0.2.200")  # a new address: her new phone
    with pytest.raises(LoginThrottled):
        log_in(auth, "ann@example.com", "203.0.113.66")  # the attacker's still waits


class TestDefaultPolicy:
    @pytest.fixture
    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy()

    def test_one_address_guessing_for_days_never_reaches_the_account_wide_limit(
        self, auth, clock
    ) -> None:
        # The (account, address) backoff lets one address about 110 guesses a
        # day, under the account-wide 200 per (fixed) day: so however long one
        # attacker address keeps at it, the owner can sign in from a new one.
        auth.sign_up(SignUp("ann@example.com", PASSWORD))
        guesses = 0
        end = clock.now.timestamp() + 3 * 86_400
        while clock.now.timestamp() < end:
            try:
                fail(auth, "ann@example.com", "203.0.113.66")
                guesses += 1
            except LoginThrottled as exc:
                clock.advance(exc.retry_after_seconds)
        assert 250 < guesses < 350  # ~110 the first day, ~96 a day after
        log_in(auth, "ann@example.com", "192.0.2.200")


def test_distributed_guessing_blocks_new_addresses_but_not_known_ones(auth) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    log_in(auth, "ann@example.com", "192.0.2.10")  # her usual place
    for n in range(12):  # 12 addresses, one guess each: no pair nor address limit
        fail(auth, "ann@example.com", f"203.0.113.{n}")
    with pytest.raises(LoginThrottled):
        log_in(auth, "ann@example.com", "192.0.2.77")
    log_in(auth, "ann@example.com", "192.0.2.10")


def test_the_wait_never_exceeds_the_cap(auth, clock, throttle_policy) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    waits = []
    for _ in range(30):
        try:
            fail(auth, "ann@example.com")
        except LoginThrottled as exc:
            waits.append(exc.retry_after_seconds)
            clock.advance(exc.retry_after_seconds)
    assert max(waits) == throttle_policy.backoff_max_seconds
    clock.advance(throttle_policy.backoff_max_seconds)
    log_in(auth, "ann@example.com", "203.0.113.9")


def test_the_account_window_is_fixed_and_the_others_slide(clock) -> None:
    store = InProcessAttemptStore(clock=FakeMonotonic(clock))
    assert store.add_failure("fixed", 100, sliding=False) == 1
    assert store.add_failure("sliding", 100) == 1
    clock.advance(60)
    assert store.add_failure("fixed", 100, sliding=False) == 2
    assert store.add_failure("sliding", 100) == 2
    clock.advance(60)  # 120 s after the first failure, 60 s after the last
    assert store.add_failure("fixed", 100, sliding=False) == 1
    assert store.add_failure("sliding", 100) == 3
