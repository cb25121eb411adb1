"""What an idempotency key replays, as stored: a request's outcome in JSON, and
the results of the writes (payment, top-up, refund) as plain dicts within it.

Stored outcomes outlive a deploy (keys live at least 24 h): a change here must
still read what the previous version wrote.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from payment_service.domain.idempotency import Outcome
from payment_service.domain.model import (
    LineItem,
    Payment,
    PaymentStatus,
    Refund,
    RefundResult,
    TopUp,
)


def outcome_to_json(outcome: Outcome) -> str:
    data: dict[str, Any] = {"code": outcome.code}
    if outcome.body is not None:
        data["body"] = outcome.body
    if outcome.reason:
        data["reason"] = outcome.reason
        data["message"] = outcome.message
    return json.dumps(data, separators=(",", ":"))


def outcome_from_json(stored: str) -> Outcome:
    data = json.loads(stored)
    return Outcome(
        code=data["code"],
        body=data.get("body"),
        reason=data.get("reason", ""),
        message=data.get("message", ""),
    )


def payment_to_dict(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "user_id": payment.user_id,
        "merchant_id": payment.merchant_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "items": [[i.sku, i.quantity, i.unit_amount] for i in payment.items],
        "description": payment.description,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "status": payment.status.value,
        "failure_reason": payment.failure_reason,
        "refunded_amount": payment.refunded_amount,
    }


def payment_from_dict(data: dict[str, Any]) -> Payment:
    return Payment(
        id=data["id"],
        user_id=data["user_id"],
        merchant_id=data["merchant_id"],
        amount=data["amount"],
        currency=data["currency"],
        items=tuple(LineItem(sku, quantity, unit) for sku, quantity, unit in data["items"]),
        description=data["description"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        status=PaymentStatus(data["status"]),
        failure_reason=data["failure_reason"],
        refunded_amount=data["refunded_amount"],
    )


def top_up_to_dict(top_up: TopUp) -> dict[str, Any]:
    return {
        "id": top_up.id,
        "user_id": top_up.user_id,
        "amount": top_up.amount,
        "currency": top_up.currency,
        "balance": top_up.balance,
        "created_at": top_up.created_at.isoformat(),
    }


def top_up_from_dict(data: dict[str, Any]) -> TopUp:
    return TopUp(**{**data, "created_at": datetime.fromisoformat(data["created_at"])})


def refund_result_to_dict(result: RefundResult) -> dict[str, Any]:
    refund = result.refund
    return {
        "refund": {
            "id": refund.id,
            "payment_id": refund.payment_id,
            "user_id": refund.user_id,
            "amount": refund.amount,
            "currency": refund.currency,
            "created_at": refund.created_at.isoformat(),
        },
        "payment": payment_to_dict(result.payment),
    }


def refund_result_from_dict(data: dict[str, Any]) -> RefundResult:
    refund = data["refund"]
    return RefundResult(
        refund=Refund(**{**refund, "created_at": datetime.fromisoformat(refund["created_at"])}),
        payment=payment_from_dict(data["payment"]),
    )


class JsonReplayCodec:
    """The service layer's ReplayCodec port: the functions above."""

    payment_to_dict = staticmethod(payment_to_dict)
    payment_from_dict = staticmethod(payment_from_dict)
    top_up_to_dict = staticmethod(top_up_to_dict)
    top_up_from_dict = staticmethod(top_up_from_dict)
    refund_result_to_dict = staticmethod(refund_result_to_dict)
    refund_result_from_dict = staticmethod(refund_result_from_dict)
