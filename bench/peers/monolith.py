"""Scenario 2, the monolith peer: what a team would write instead of the platform.

One idiomatic Flask + SQLAlchemy (ORM) app, served by gunicorn with the
gateway's worker settings, on the same PostgreSQL databases the services use:

- GET /v1/profiles/me: verify the same EdDSA access token (PyJWT, the key from
  auth's JWKS, fetched once), read the profile row by primary key, answer JSON.
  No cache: a monolith's read is one indexed SELECT.
- POST /v1/payments (Idempotency-Key header): in one transaction, claim the key
  (a replay returns the stored answer), debit the wallet with a guarded UPDATE,
  write the payment, its items, a balanced ledger transaction of two entries and
  the stored answer. No outbox: a monolith has no other service to tell, so it
  does strictly less work than the payment service here.

Settings: MONOLITH_PROFILE_DATABASE_URL, MONOLITH_PAYMENT_DATABASE_URL,
MONOLITH_JWKS_URL, AUTH_TOKEN_ISSUER, AUTH_TOKEN_AUDIENCE.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import Flask, Response, request
from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text, create_engine, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

WALLET_NAMESPACE = uuid.UUID("5f0e8a52-31c5-4a53-9d8e-0b8d63f4a0c1")
IDEMPOTENCY_TTL = timedelta(hours=24)


class ProfileBase(DeclarativeBase):
    pass


class PaymentBase(DeclarativeBase):
    pass


class Profile(ProfileBase):
    __tablename__ = "profiles"
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    bio: Mapped[str] = mapped_column(String(500))
    avatar_url: Mapped[str] = mapped_column(String(2048))
    locale: Mapped[str] = mapped_column(String(128))
    preferences: Mapped[dict[str, str]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Balance(PaymentBase):
    __tablename__ = "balances"
    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Account(PaymentBase):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Payment(PaymentBase):
    __tablename__ = "payments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    merchant_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24))
    failure_reason: Mapped[str] = mapped_column(String(64))
    refunded_amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaymentItem(PaymentBase):
    __tablename__ = "payment_items"
    payment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit_amount: Mapped[int] = mapped_column(BigInteger)


class LedgerTransaction(PaymentBase):
    __tablename__ = "ledger_transactions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    reference_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerEntry(PaymentBase):
    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[str] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(PaymentBase):
    __tablename__ = "idempotency_keys"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def account_id(kind: str, owner: str, currency: str) -> str:
    return str(uuid.uuid5(WALLET_NAMESPACE, f"{kind}:{owner}:{currency}"))


def problem(status: int, detail: str) -> Response:
    body = json.dumps({"status": status, "detail": detail})
    return Response(body, status=status, mimetype="application/problem+json")


def load_keys(jwks_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(jwks_url, timeout=5) as answer:  # noqa: S310 - loopback
        keys = json.load(answer)["keys"]
    return {key["kid"]: jwt.PyJWK(key, "EdDSA").key for key in keys}


def create_app() -> Flask:
    app = Flask(__name__)
    threads = int(os.environ.get("GATEWAY_THREADS", "8"))
    profiles = sessionmaker(
        create_engine(os.environ["MONOLITH_PROFILE_DATABASE_URL"], pool_size=threads),
        expire_on_commit=False,
    )
    payments = sessionmaker(
        create_engine(os.environ["MONOLITH_PAYMENT_DATABASE_URL"], pool_size=threads),
        expire_on_commit=False,
    )
    keys = load_keys(os.environ["MONOLITH_JWKS_URL"])
    issuer = os.environ.get("AUTH_TOKEN_ISSUER", "switchyard-auth")
    audience = os.environ.get("AUTH_TOKEN_AUDIENCE", "switchyard-api")

    def caller() -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            key = keys.get(jwt.get_unverified_header(token).get("kid", ""))
            if key is None:
                return None
            claims = jwt.decode(
                token, key, algorithms=["EdDSA"], audience=audience, issuer=issuer, leeway=10
            )
        except jwt.InvalidTokenError:
            return None
        return str(claims["sub"])

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    @app.get("/v1/profiles/me")
    def my_profile() -> Response:
        user_id = caller()
        if user_id is None:
            return problem(401, "a valid access token is required")
        with profiles() as session:
            profile = session.get(Profile, user_id)
        if profile is None:
            return problem(404, "no profile")
        return app.json.response(
            {
                "user_id": profile.user_id,
                "display_name": profile.display_name,
                "bio": profile.bio,
                "avatar_url": profile.avatar_url,
                "locale": profile.locale,
                "preferences": profile.preferences,
                "create_time": profile.create_time.isoformat(),
                "update_time": profile.update_time.isoformat(),
            }
        )

    @app.post("/v1/payments")
    def create_payment() -> Response:
        user_id = caller()
        if user_id is None:
            return problem(401, "a valid access token is required")
        key = request.headers.get("Idempotency-Key", "")
        body = request.get_json(silent=True)
        if not key or not isinstance(body, dict):
            return problem(400, "an Idempotency-Key header and a JSON body are required")
        try:
            amount = int(body["amount"])
            currency = str(body["currency"])
            merchant_id = str(body["merchant_id"])
            items = [
                (str(item["sku"]), int(item["quantity"]), int(item["unit_amount"]))
                for item in body.get("items", [])
            ]
        except (KeyError, TypeError, ValueError):
            return problem(400, "amount, currency and merchant_id are required")
        if amount <= 0 or sum(q * u for _, q, u in items) not in (0, amount):
            return problem(400, "the amount must be positive and match its items")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with payments.begin() as session:
            answer = _pay(
                session,
                user_id=user_id,
                key=key,
                fingerprint=fingerprint,
                amount=amount,
                currency=currency,
                merchant_id=merchant_id,
                items=items,
            )
        if isinstance(answer, Response):
            return answer
        return Response(answer, status=201, mimetype="application/json")

    return app


def _pay(
    session: Session,
    *,
    user_id: str,
    key: str,
    fingerprint: str,
    amount: int,
    currency: str,
    merchant_id: str,
    items: list[tuple[str, int, int]],
) -> str | Response:
    now = datetime.now(UTC)
    claimed = session.execute(
        insert(IdempotencyKey)
        .values(
            user_id=user_id,
            key=key,
            operation="CreatePayment",
            fingerprint=fingerprint,
            created_at=now,
            expires_at=now + IDEMPOTENCY_TTL,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if claimed is None:
        stored = session.get(IdempotencyKey, (user_id, key), with_for_update=True)
        if stored is None or stored.outcome is None or stored.fingerprint != fingerprint:
            return problem(409, "this Idempotency-Key was used for another request")
        return stored.outcome
    wallet = account_id("wallet", user_id, currency)
    debited = session.execute(
        update(Balance)
        .where(Balance.account_id == wallet, Balance.amount >= amount)
        .values(amount=Balance.amount - amount, updated_at=now)
        .returning(Balance.amount)
    ).first()
    if debited is None:
        return problem(412, "insufficient funds")
    merchant = account_id("merchant", merchant_id, currency)
    if session.get(Account, merchant) is None:
        session.execute(
            insert(Account)
            .values(
                id=merchant, kind="merchant", owner=merchant_id, currency=currency, created_at=now
            )
            .on_conflict_do_nothing()
        )
    payment = Payment(
        id=str(uuid.uuid4()),
        user_id=user_id,
        merchant_id=merchant_id,
        amount=amount,
        currency=currency,
        description="",
        status="succeeded",
        failure_reason="",
        refunded_amount=0,
        created_at=now,
        updated_at=now,
    )
    transaction = LedgerTransaction(
        id=str(uuid.uuid4()), kind="payment", reference_id=payment.id, created_at=now
    )
    session.add(payment)
    session.flush()
    session.add_all(
        [
            PaymentItem(
                payment_id=payment.id, position=n, sku=sku, quantity=quantity, unit_amount=unit
            )
            for n, (sku, quantity, unit) in enumerate(items)
        ]
    )
    session.add(transaction)
    session.flush()
    session.add_all(
        [
            LedgerEntry(
                transaction_id=transaction.id, account_id=wallet, currency=currency, amount=-amount
            ),
            LedgerEntry(
                transaction_id=transaction.id, account_id=merchant, currency=currency, amount=amount
            ),
        ]
    )
    outcome = json.dumps(
        {
            "id": payment.id,
            "user_id": user_id,
            "merchant_id": merchant_id,
            "amount": amount,
            "currency": currency,
            "status": payment.status,
            "create_time": now.isoformat(),
        }
    )
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(outcome=outcome)
    )
    return outcome
