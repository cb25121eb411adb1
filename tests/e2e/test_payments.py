"""Wallet, payments and refunds through the real gateway and payment service."""

from __future__ import annotations

import uuid

import httpx

from e2e.harness import Account, AuthActions

PROBLEM = "application/problem+json"
ITEMS = [{"sku": "sku-tea", "quantity": 2, "unit_amount": 450}]


def _post(api: httpx.Client, account: Account, path: str, body: dict, key: str) -> httpx.Response:
    return api.post(path, json=body, headers=account.headers | {"Idempotency-Key": key})


def _balance(api: httpx.Client, account: Account, currency: str = "EUR") -> int:
    wallet = api.get("/v1/wallet", headers=account.headers)
    assert wallet.status_code == 200, wallet.text
    return next((b["amount"] for b in wallet.json()["balances"] if b["currency"] == currency), 0)


def test_top_up_pay_list_and_refund(api: httpx.Client, auth: AuthActions) -> None:
    buyer = auth.signup()
    top_up = _post(
        api, buyer, "/v1/wallet/top-ups", {"amount": 5000, "currency": "EUR"}, "top-up-1"
    )
    assert top_up.status_code == 201, top_up.text
    assert _balance(api, buyer) == 5000

    body = {"amount": 900, "currency": "EUR", "merchant_id": "merchant-1", "items": ITEMS}
    paid = _post(api, buyer, "/v1/payments", body, "pay-1")
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert (payment["amount"], payment["status"]) == (900, "PAYMENT_STATUS_SUCCEEDED")
    assert _balance(api, buyer) == 4100

    replay = _post(api, buyer, "/v1/payments", body, "pay-1")
    assert (replay.status_code, replay.json()) == (201, payment)
    assert _balance(api, buyer) == 4100

    listed = api.get("/v1/payments", headers=buyer.headers, params={"page_size": 10})
    assert [p["id"] for p in listed.json()["payments"]] == [payment["id"]]

    refund = _post(api, buyer, f"/v1/payments/{payment['id']}/refunds", {"amount": 300}, "refund-1")
    assert refund.status_code == 201, refund.text
    assert _balance(api, buyer) == 4400
    again = api.get(f"/v1/payments/{payment['id']}", headers=buyer.headers).json()
    assert (again["refunded_amount"], again["status"]) == (
        300,
        "PAYMENT_STATUS_PARTIALLY_REFUNDED",
    )


def test_idempotency_rules_at_the_http_edge(api: httpx.Client, auth: AuthActions) -> None:
    buyer = auth.signup()
    top_up = {"amount": 1000, "currency": "EUR"}
    missing = api.post("/v1/wallet/top-ups", json=top_up, headers=buyer.headers)
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith(PROBLEM)

    key = f"k-{uuid.uuid4()}"
    assert _post(api, buyer, "/v1/wallet/top-ups", top_up, key).status_code == 201
    changed = _post(api, buyer, "/v1/wallet/top-ups", {"amount": 2000, "currency": "EUR"}, key)
    assert changed.status_code == 422, changed.text
    assert _balance(api, buyer) == 1000


def test_insufficient_funds_moves_nothing(api: httpx.Client, auth: AuthActions) -> None:
    buyer = auth.signup()
    _post(
        api, buyer, "/v1/wallet/top-ups", {"amount": 100, "currency": "EUR"}, "t"
    ).raise_for_status()
    body = {"amount": 900, "currency": "EUR", "merchant_id": "merchant-1", "items": ITEMS}
    refused = _post(api, buyer, "/v1/payments", body, "pay-broke")
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "FAILED_PRECONDITION", refused.text
    assert _balance(api, buyer) == 100


def test_someone_elses_payment_is_not_found(api: httpx.Client, auth: AuthActions) -> None:
    buyer, other = auth.signup(), auth.signup()
    _post(
        api, buyer, "/v1/wallet/top-ups", {"amount": 1000, "currency": "EUR"}, "t"
    ).raise_for_status()
    body = {"amount": 900, "currency": "EUR", "merchant_id": "merchant-1", "items": ITEMS}
    payment = _post(api, buyer, "/v1/payments", body, "p").json()
    response = api.get(f"/v1/payments/{payment['id']}", headers=other.headers)
    assert response.status_code == 404


def test_invalid_amounts_are_400_with_field_errors(api: httpx.Client, auth: AuthActions) -> None:
    buyer = auth.signup()
    for amount, currency in [(0, "EUR"), (-5, "EUR"), (1.5, "EUR"), (2**53, "EUR"), (10, "XXZ")]:
        response = _post(
            api,
            buyer,
            "/v1/wallet/top-ups",
            {"amount": amount, "currency": currency},
            f"bad-{uuid.uuid4()}",
        )
        assert response.status_code == 400, (amount, currency, response.text)
        assert response.json()["errors"], response.text
    assert _balance(api, buyer) == 0
