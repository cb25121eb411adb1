"""Recommendations through the real gateway, in both platform modes: a payment
changes the buyer's recommendations within a bound, a new user gets popular
items, and GET /v1/me puts profile, wallet and recommendations together."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from e2e.harness import Account, AuthActions

# A payment shows in the buyer's recommendations within this many seconds
# (relay poll 0.5 s + delivery + one model update + cache invalidation;
# typically well under a second).
PROPAGATION_BOUND_SECONDS = 10.0
# RECOMMENDATION_POPULAR_MIN_BUYERS and _PERSONAL_MIN_BUYERS, the defaults: the
# distinct buyers an item needs to be popular, or a personal pick.
MIN_BUYERS = 3
# What the shared popular list may lag behind (RECOMMENDATION_POPULAR_CACHE_TTL_SECONDS
# as tests/e2e/harness.py sets it, plus a margin).
POPULAR_CACHE_SECONDS = 1.5


def skus(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"sku-{tag}-{n}" for n in range(count)]


def fund(api: httpx.Client, account: Account, amount: int = 100_000) -> None:
    response = api.post(
        "/v1/wallet/top-ups",
        json={"amount": amount, "currency": "EUR"},
        headers=account.headers | {"Idempotency-Key": f"top-up-{uuid.uuid4()}"},
    )
    assert response.status_code == 201, response.text


def pay(api: httpx.Client, account: Account, items: dict[str, int]) -> dict[str, Any]:
    lines = [{"sku": sku, "quantity": q, "unit_amount": 100} for sku, q in items.items()]
    body = {
        "amount": sum(q * 100 for q in items.values()),
        "currency": "EUR",
        "merchant_id": "merchant-1",
        "items": lines,
    }
    response = api.post(
        "/v1/payments",
        json=body,
        headers=account.headers | {"Idempotency-Key": f"pay-{uuid.uuid4()}"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def recommendations(api: httpx.Client, account: Account, limit: int = 10) -> list[dict[str, Any]]:
    response = api.get("/v1/recommendations", params={"limit": limit}, headers=account.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def wait_until(check: Any, bound: float = PROPAGATION_BOUND_SECONDS) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound, "not within the bound"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_payment_changes_the_buyers_recommendations_within_the_bound(
    api: httpx.Client, auth: AuthActions
) -> None:
    tea, cups, kettle = skus(3)
    # Enough earlier buyers for cups and kettle to be picks (MIN_BUYERS).
    earlier = [auth.signup() for _ in range(MIN_BUYERS)]
    buyer = auth.signup()
    for account in (*earlier, buyer):
        fund(api, account)
    # Applied before the buyer's payment: one relay publishes in commit order
    # and events are applied in stream order.
    for account in earlier:
        pay(api, account, {tea: 1, cups: 2, kettle: 1})

    before = recommendations(api, buyer)  # cached from now on
    assert all(item["source"] == "popular" for item in before)
    pay(api, buyer, {tea: 1})

    def personal() -> bool:
        items = recommendations(api, buyer)
        found = {i["sku"] for i in items if i["source"] == "personal"}
        return {cups, kettle} <= found and tea not in {i["sku"] for i in items}

    elapsed = wait_until(personal)
    assert elapsed < PROPAGATION_BOUND_SECONDS


def test_a_new_user_gets_popular_items(api: httpx.Client, auth: AuthActions) -> None:
    (sku,) = skus(1)
    for _ in range(MIN_BUYERS):
        buyer = auth.signup()
        fund(api, buyer)
        pay(api, buyer, {sku: 5})
    newcomer = auth.signup()
    wait_until(lambda: bool(recommendations(api, newcomer)))
    items = recommendations(api, newcomer, limit=3)
    assert 1 <= len(items) <= 3
    assert {item["source"] for item in items} == {"popular"}
    assert all(item["score"] > 0 for item in items)


def test_a_bad_limit_is_a_400_problem(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup()
    response = api.get("/v1/recommendations", params={"limit": 1000}, headers=account.headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "limit"
    assert api.get("/v1/recommendations").status_code == 401


def test_me_brings_profile_wallet_and_recommendations(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup(display_name="Grace Hopper")
    fund(api, account, 2500)
    response = api.get("/v1/me", headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == account.user_id
    assert body["profile"]["display_name"] == "Grace Hopper"
    assert body["wallet"]["balances"] == [{"currency": "EUR", "amount": 2500}]
    assert isinstance(body["recommendations"]["items"], list)
    assert api.get("/v1/me").status_code == 401
    spec = api.get("/openapi.json").json()
    assert {"/v1/me", "/v1/recommendations"} <= set(spec["paths"])


def test_one_buyer_cannot_poison_everyones_popular_list(
    api: httpx.Client, auth: AuthActions
) -> None:
    attacker = auth.signup()
    fund(api, attacker, 2_000_000)
    wallet = api.get("/v1/wallet", headers=attacker.headers).json()

    # A SKU outside the documented pattern never gets in: 400 naming it, nothing moves.
    odd = {
        "amount": 1_000_000,
        "currency": "EUR",
        "merchant_id": "merchant-1",
        "items": [{"sku": "<svg onload=alert(1)>", "quantity": 1_000_000, "unit_amount": 1}],
    }
    response = api.post(
        "/v1/payments",
        json=odd,
        headers=attacker.headers | {"Idempotency-Key": f"pay-{uuid.uuid4()}"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "items[0].sku" in {error["field"] for error in response.json()["errors"]}
    assert api.get("/v1/wallet", headers=attacker.headers).json() == wallet
    assert api.get("/v1/payments", headers=attacker.headers).json()["payments"] == []

    # A valid SKU in a huge quantity from one buyer, beside what others buy;
    # then items bought by MIN_BUYERS users.
    bulk, tea, biscuits = skus(3)
    lines = [{"sku": sku, "quantity": 1_000_000, "unit_amount": 1} for sku in (bulk, tea)]
    response = api.post(
        "/v1/payments",
        json={**odd, "amount": 2_000_000, "items": lines},
        headers=attacker.headers | {"Idempotency-Key": f"pay-{uuid.uuid4()}"},
    )
    assert response.status_code == 201, response.text
    buyers = [auth.signup() for _ in range(MIN_BUYERS)]
    probe = auth.signup()
    for buyer in (*buyers, probe):
        fund(api, buyer)
    for buyer in buyers:
        pay(api, buyer, {tea: 1, biscuits: 1})
    pay(api, probe, {tea: 1})

    # Events are applied in order: once the probe's shows (biscuits, bought with
    # tea by the buyers, becomes their pick), every earlier one did too.
    def last_applied() -> bool:
        items = recommendations(api, probe)
        return biscuits in {i["sku"] for i in items if i["source"] == "personal"}

    wait_until(last_applied)
    time.sleep(POPULAR_CACHE_SECONDS)
    newcomer = auth.signup()
    popular = recommendations(api, newcomer, limit=100)
    assert {i["source"] for i in popular} == {"popular"}
    assert tea in {i["sku"] for i in popular}  # MIN_BUYERS distinct buyers: popular
    assert bulk not in {i["sku"] for i in popular}  # one buyer, whatever the quantity
    # Nor does the bulk buy become a personal pick of anyone.
    assert bulk not in {i["sku"] for i in recommendations(api, probe, limit=100)}
