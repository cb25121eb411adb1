"""What a request does with a key an earlier request stored: the decision alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from payment_service.domain.idempotency import (
    Decision,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    KeyClaim,
    Outcome,
    StoredKey,
    decide,
)
from switchyard_kit import Aborted, FailedPrecondition

NOW = datetime(2025, 1, 1, tzinfo=UTC)
CLAIM = KeyClaim("u1", "k1", "CreatePayment", "print-1", NOW, NOW + timedelta(hours=24))
DONE = Outcome(code="OK", body={"id": "p1"})


def _stored(
    *,
    operation: str = "CreatePayment",
    fingerprint: str = "print-1",
    expires_at: datetime = NOW + timedelta(hours=1),
    outcome: Outcome | None = DONE,
) -> StoredKey:
    return StoredKey(operation, fingerprint, expires_at, outcome)


def test_a_key_nobody_stored_is_the_requests_own():
    assert decide(CLAIM, None) == Decision()


def test_the_same_request_replays_the_stored_outcome():
    assert decide(CLAIM, _stored()) == Decision(replay=DONE)
    failed = Outcome(code="FAILED_PRECONDITION", reason="INSUFFICIENT_FUNDS", message="no")
    assert decide(CLAIM, _stored(outcome=failed)) == Decision(replay=failed)


@pytest.mark.parametrize(
    "stored",
    [_stored(fingerprint="print-2"), _stored(operation="TopUpWallet")],
    ids=["other body", "other operation"],
)
def test_another_request_with_the_key_is_refused(stored):
    with pytest.raises(IdempotencyKeyReused) as reused:
        decide(CLAIM, stored)
    # FAILED_PRECONDITION with this reason: the gateway answers 422.
    assert isinstance(reused.value, FailedPrecondition)
    assert (reused.value.code, reused.value.reason) == (
        "FAILED_PRECONDITION",
        "IDEMPOTENCY_KEY_REUSED",
    )


def test_a_key_whose_request_has_not_committed_is_in_flight():
    with pytest.raises(IdempotencyKeyInFlight) as in_flight:
        decide(CLAIM, _stored(outcome=None))
    assert isinstance(in_flight.value, Aborted)
    assert (in_flight.value.code, in_flight.value.reason) == (
        "ABORTED",
        "IDEMPOTENCY_KEY_IN_FLIGHT",
    )


@pytest.mark.parametrize("expired_for", [timedelta(0), timedelta(hours=1)])
def test_an_expired_key_is_taken_over_whatever_it_stored(expired_for):
    """Expired but not cleaned up yet: the key starts a new life, even for
    another request or one that never finished."""
    for stored in (
        _stored(expires_at=NOW - expired_for),
        _stored(expires_at=NOW - expired_for, fingerprint="print-2", outcome=None),
    ):
        assert decide(CLAIM, stored) == Decision(take_over=True)
