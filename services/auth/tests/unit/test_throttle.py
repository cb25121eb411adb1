"""Brute-force protection: backoff per account and per address, no permanent lockout."""

from __future__ import annotations

import pytest
from auth_service.domain.errors import InvalidCredentials, LoginThrottled
from auth_service.service_layer.handlers import ClientInfo, Login, SignUp
from auth_service.service_layer.throttle import ThrottlePolicy

PASSWORD = "a long passphrase"


def fail(auth, email: str, address: str = "203.0.113.9") -> None:
    with pytest.raises(InvalidCredentials):
        auth.login(Login(email, "wrong password", ClientInfo(address)))


def test_backoff_doubles_and_is_capped() -> None:
    policy = ThrottlePolicy(account_free_failures=3, backoff_base_seconds=1, backoff_max_seconds=60)
    assert [policy.backoff(n, 3) for n in (1, 2, 3, 4, 5, 9, 40)] == [0, 0, 1, 2, 4, 60, 60]


def test_the_failure_after_the_free_ones_is_throttled_then_a_correct_password_works(
    auth, clock, database
) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    for _ in range(3):
        fail(auth, "ann@example.com")
    with pytest.raises(LoginThrottled) as caught:
        auth.login(Login("ann@example.com", PASSWORD, ClientInfo("203.0.113.9")))
    assert caught.value.retry_after_seconds == 1
    assert caught.value.code == "RESOURCE_EXHAUSTED"
    clock.advance(1)
    auth.login(Login("ann@example.com", PASSWORD, ClientInfo("203.0.113.9")))
    assert {"login_failed", "login_throttled", "login_succeeded"} <= set(database.audit_types())


def test_another_account_is_not_affected(auth) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    auth.sign_up(SignUp("bob@example.com", PASSWORD))
    for _ in range(3):
        fail(auth, "ann@example.com", "203.0.113.1")
    auth.login(Login("bob@example.com", PASSWORD, ClientInfo("203.0.113.1")))


def test_unknown_emails_are_counted_like_known_ones(auth) -> None:
    for _ in range(3):
        fail(auth, "nobody@example.com")
    with pytest.raises(LoginThrottled):
        auth.login(Login("nobody@example.com", "x", ClientInfo("203.0.113.9")))


def test_one_address_guessing_many_accounts_is_throttled(auth) -> None:
    for n in range(5):
        fail(auth, f"user{n}@example.com", "198.51.100.7")
    with pytest.raises(LoginThrottled):
        auth.login(Login("fresh@example.com", "x", ClientInfo("198.51.100.7")))


def test_the_owner_at_a_known_address_is_not_locked_out_by_an_attacker(auth) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    auth.login(Login("ann@example.com", PASSWORD, ClientInfo("192.0.2.10")))  # her usual place
    for n in range(3):
        fail(auth, "ann@example.com", f"203.0.113.{n}")
    with pytest.raises(LoginThrottled):
        auth.login(Login("ann@example.com", PASSWORD, ClientInfo("203.0.113.77")))
    auth.login(Login("ann@example.com", PASSWORD, ClientInfo("192.0.2.10")))


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
    auth.login(Login("ann@example.com", PASSWORD, ClientInfo("203.0.113.9")))
