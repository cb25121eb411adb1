"""What an idempotency key stores, read back as it was written."""

from __future__ import annotations

from datetime import UTC, datetime

from payment_service.adapters.replay_codec import (
    outcome_from_json,
    outcome_to_json,
    payment_from_dict,
    payment_to_dict,
    refund_result_from_dict,
    refund_result_to_dict,
    top_up_from_dict,
    top_up_to_dict,
)
from payment_service.domain.idempotency import Outcome
from payment_service.domain.model import LineItem, Payment, Refund, RefundResult, TopUp

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _payment(amount: int = 1_000) -> Payment:
    return Payment("p1", "u1", "m1", amount, "EUR", (LineItem("a", 1, amount),), "", NOW, NOW)


def test_snapshots_round_trip():
    payment = _payment()
    payment.succeed(NOW)
    assert payment_from_dict(payment_to_dict(payment)) == payment


def test_top_ups_and_refunds_round_trip():
    top_up = TopUp("t1", "u1", 500, "EUR", 1_500, NOW)
    assert top_up_from_dict(top_up_to_dict(top_up)) == top_up
    payment = _payment()
    payment.succeed(NOW)
    payment.refund(400, NOW)
    result = RefundResult(Refund("r1", "p1", "u1", 400, "EUR", NOW), payment)
    assert refund_result_from_dict(refund_result_to_dict(result)) == result


def test_outcomes_round_trip_in_the_stored_json():
    ok = Outcome(code="OK", body={"id": "p1", "amount": 100})
    assert outcome_to_json(ok) == '{"code":"OK","body":{"id":"p1","amount":100}}'
    failed = Outcome(code="FAILED_PRECONDITION", reason="INSUFFICIENT_FUNDS", message="too low")
    assert outcome_to_json(failed) == (
        '{"code":"FAILED_PRECONDITION","reason":"INSUFFICIENT_FUNDS","message":"too low"}'
    )
    for outcome in (ok, failed):
        assert outcome_from_json(outcome_to_json(outcome)) == outcome
