"""Per-address rate limits on the real Redis, in process, and with Redis down."""

from __future__ import annotations

import uuid

import pytest
from gateway.problems import ApiError
from gateway.ratelimit import RateLimits
from switchyard_dev.ports import free_port as closed_port

from gateway import metrics


def fresh_address() -> str:
    return f"2001:db8::{uuid.uuid4().hex[:4]}"


def refused_after(limits: RateLimits, name: str, address: str, attempts: int) -> ApiError:
    for _ in range(attempts):
        limits.check(name, address)
    with pytest.raises(ApiError) as raised:
        limits.check(name, address)
    return raised.value


@pytest.mark.parametrize("storage", ["redis", "memory"])
def test_over_the_rate_is_429_with_retry_after(
    storage: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if storage == "redis" else None
    limits = RateLimits({"signup": "3/minute", "login": "10/minute"}, redis_url)
    address = fresh_address()
    error = refused_after(limits, "signup", address, 3)
    assert error.status == 429
    assert error.code == "RESOURCE_EXHAUSTED"
    assert 1 <= int(error.headers["Retry-After"]) <= 60
    # Other addresses and other limits keep their own budgets.
    limits.check("signup", fresh_address())
    limits.check("login", address)


def test_redis_budget_is_shared_between_processes(redis_url: str) -> None:
    # Two limiters stand for two gateway workers (or pods) on one Redis.
    first, second = (RateLimits({"login": "2/minute"}, redis_url) for _ in range(2))
    address = fresh_address()
    first.check("login", address)
    second.check("login", address)
    with pytest.raises(ApiError):
        first.check("login", address)


def test_several_rates_burst_then_sustained() -> None:
    limits = RateLimits({"signup": "2/second;3/minute"}, None)
    address = fresh_address()
    assert refused_after(limits, "signup", address, 2).status == 429


def test_an_empty_rate_turns_the_limit_off() -> None:
    limits = RateLimits({"refresh": ""}, None)
    for _ in range(100):
        limits.check("refresh", "192.0.2.1")


def test_redis_down_fails_open_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    limits = RateLimits({"signup": "1/minute"}, f"redis://127.0.0.1:{closed_port()}/0")
    before = metrics.RATE_LIMIT_ERRORS.labels("signup")._value.get()
    for _ in range(5):
        limits.check("signup", "192.0.2.1")  # no 429, no exception: let through
    assert metrics.RATE_LIMIT_ERRORS.labels("signup")._value.get() - before == 5
    assert [r.message for r in caplog.records].count(
        "rate limit storage failed; the request is let through"
    ) == 1
