"""A whole journey through the typed client generated from gateway/openapi.json
(switchyard_client, `make client`), against the real platform in both modes:
sign up, top up, pay, refund part of it, get recommendations."""

from __future__ import annotations

import time
import uuid
from http import HTTPStatus
from typing import TypeVar

from switchyard_client import AuthenticatedClient, Client
from switchyard_client.api.auth_service import auth_service_sign_up
from switchyard_client.api.payment_service import (
    payment_service_create_payment,
    payment_service_get_wallet,
    payment_service_refund_payment,
    payment_service_top_up_wallet,
)
from switchyard_client.api.recommendation_service import (
    recommendation_service_get_recommendations,
)
from switchyard_client.models import (
    CreatePaymentRequest,
    CreatePaymentRequestCurrency,
    GetRecommendationsResponse,
    LineItemInput,
    Payment,
    PaymentServiceRefundPaymentRefundPaymentRequest,
    PaymentStatus,
    Problem,
    RefundPaymentResponse,
    SignUpRequest,
    Tokens,
    TopUp,
    TopUpWalletRequest,
    TopUpWalletRequestCurrency,
    Wallet,
)
from switchyard_client.types import Response

from e2e.harness import RunningPlatform

T = TypeVar("T")
PASSWORD = "correct horse battery staple"
# The distinct buyers an item needs to be a personal pick (the default of
# RECOMMENDATION_PERSONAL_MIN_BUYERS), and how long a payment may take to
# show (see tests/e2e/test_recommendations.py).
MIN_BUYERS = 3
PROPAGATION_BOUND_SECONDS = 10.0


def parsed(response: Response[T | Problem], status: HTTPStatus, kind: type[T]) -> T:
    """The typed body of a successful answer (with the problem shown if not)."""
    assert response.status_code == status, response.parsed
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


def sign_up(base_url: str) -> AuthenticatedClient:
    email = f"client-{uuid.uuid4().hex[:12]}@example.com"
    with Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous:
        answer = auth_service_sign_up.sync_detailed(
            client=anonymous, body=SignUpRequest(email=email, password=PASSWORD)
        )
    tokens = parsed(answer, HTTPStatus.CREATED, Tokens)
    assert tokens.token_type == "Bearer"
    return AuthenticatedClient(base_url=base_url, token=tokens.access_token)


def top_up(client: AuthenticatedClient, amount: int) -> TopUp:
    answer = payment_service_top_up_wallet.sync_detailed(
        client=client,
        body=TopUpWalletRequest(amount=amount, currency=TopUpWalletRequestCurrency.EUR),
        idempotency_key=f"top-up-{uuid.uuid4()}",
    )
    return parsed(answer, HTTPStatus.CREATED, TopUp)


def pay(client: AuthenticatedClient, items: dict[str, int]) -> Payment:
    lines = [LineItemInput(sku=sku, quantity=n, unit_amount=250) for sku, n in items.items()]
    body = CreatePaymentRequest(
        amount=sum(n * 250 for n in items.values()),
        currency=CreatePaymentRequestCurrency.EUR,
        merchant_id="merchant-1",
        items=lines,
        description="through the typed client",
    )
    answer = payment_service_create_payment.sync_detailed(
        client=client, body=body, idempotency_key=f"pay-{uuid.uuid4()}"
    )
    return parsed(answer, HTTPStatus.CREATED, Payment)


def test_signup_top_up_pay_refund_recommendations(platform: RunningPlatform) -> None:
    tag = uuid.uuid4().hex[:8]
    tea, cups = f"tea-{tag}", f"cups-{tag}"
    # Earlier buyers of tea and cups make cups a pick for anyone who buys tea.
    for _ in range(MIN_BUYERS):
        with sign_up(platform.base_url) as earlier:
            top_up(earlier, 10_000)
            pay(earlier, {tea: 1, cups: 2})

    with sign_up(platform.base_url) as client:
        funded = top_up(client, 10_000)
        assert (funded.amount, funded.currency, funded.balance) == (10_000, "EUR", 10_000)

        payment = pay(client, {tea: 2})
        assert payment.status == PaymentStatus.PAYMENT_STATUS_SUCCEEDED
        assert (payment.amount, payment.refunded_amount) == (500, 0)
        assert [(line.sku, line.quantity) for line in payment.items] == [(tea, 2)]

        refunded = parsed(
            payment_service_refund_payment.sync_detailed(
                payment.id,
                client=client,
                body=PaymentServiceRefundPaymentRefundPaymentRequest(amount=200),
                idempotency_key=f"refund-{uuid.uuid4()}",
            ),
            HTTPStatus.CREATED,
            RefundPaymentResponse,
        )
        assert isinstance(refunded.payment, Payment)
        assert refunded.payment.refunded_amount == 200

        wallet = parsed(
            payment_service_get_wallet.sync_detailed(client=client), HTTPStatus.OK, Wallet
        )
        assert [(b.currency, b.amount) for b in wallet.balances] == [("EUR", 10_000 - 500 + 200)]

        deadline = time.monotonic() + PROPAGATION_BOUND_SECONDS
        while True:
            answer = recommendation_service_get_recommendations.sync_detailed(
                client=client, limit=5
            )
            items = parsed(answer, HTTPStatus.OK, GetRecommendationsResponse).items
            if any(item.sku == cups and item.source == "personal" for item in items):
                break
            assert time.monotonic() < deadline, items
            time.sleep(0.1)
        assert tea not in {item.sku for item in items}  # bought already
