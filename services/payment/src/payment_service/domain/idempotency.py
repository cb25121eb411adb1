"""Idempotency keys: what a key remembers, how requests are compared, and what
a request does with a key somebody already claimed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switchyard_kit import Aborted, FailedPrecondition, FieldViolation, InvalidArgument
from switchyard_kit.idempotency import IDEMPOTENCY_KEY_RULE, is_idempotency_key

from payment_service.domain import errors


def check_key(key: str | None) -> str:
    """The key, or InvalidArgument when it is missing or breaks the kit's rule
    (switchyard_kit.idempotency, which the gateway applies to the header too)."""
    if not key:
        raise InvalidArgument(
            "this request needs an Idempotency-Key",
            [FieldViolation("Idempotency-Key", "required header")],
        )
    if not is_idempotency_key(key):
        raise InvalidArgument(
            "invalid Idempotency-Key", [FieldViolation("Idempotency-Key", IDEMPOTENCY_KEY_RULE)]
        )
    return key


def fingerprint(operation: str, command: Any) -> str:
    """SHA-256 of the operation and the request's meaning (a dataclass command).

    Two requests that parse to the same command (amount "100" or 100 in JSON,
    keys in any order) have the same fingerprint.
    """
    body = json.dumps(
        {"operation": operation, "request": dataclasses.asdict(command)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What the first request with a key answered, replayed to the later ones.

    `code` is "OK" with the result in `body`, or a google.rpc.Code name with
    the error's `reason` and `message`.
    """

    code: str
    body: dict[str, Any] | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class KeyClaim:
    """A request's claim on its key: whose key, for what request, kept until when."""

    user_id: str
    key: str
    operation: str
    fingerprint: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class StoredKey:
    """A key as stored by the request that claimed it: what it was used for,
    until when it is kept, and its outcome (None while that request is still in
    flight: the outcome commits with it)."""

    operation: str
    fingerprint: str
    expires_at: datetime
    outcome: Outcome | None


class IdempotencyKeyReused(FailedPrecondition):
    """Same key, another request: the gateway answers 422 for this reason."""

    default_reason = errors.IDEMPOTENCY_KEY_REUSED

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")


class IdempotencyKeyInFlight(Aborted):
    """The request holding the key has not finished: 409, retry later."""

    default_reason = errors.IDEMPOTENCY_KEY_IN_FLIGHT

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress; retry later")


@dataclass(frozen=True)
class Decision:
    """Go ahead (`replay` is None), first taking over the expired key when
    `take_over`; or answer the stored `replay` instead."""

    replay: Outcome | None = None
    take_over: bool = False


def decide(claim: KeyClaim, stored: StoredKey | None) -> Decision:
    """What the request making `claim` does with its key, given the key as
    stored by an earlier request (None: there was none, the key is its own).

    IdempotencyKeyReused when the key was used for another request,
    IdempotencyKeyInFlight while the earlier request has not committed.
    """
    if stored is None:
        return Decision()
    if stored.expires_at <= claim.created_at:
        # Expired but not cleaned up yet: the key starts a new life.
        return Decision(take_over=True)
    if stored.fingerprint != claim.fingerprint or stored.operation != claim.operation:
        raise IdempotencyKeyReused
    if stored.outcome is None:
        raise IdempotencyKeyInFlight
    return Decision(replay=stored.outcome)
