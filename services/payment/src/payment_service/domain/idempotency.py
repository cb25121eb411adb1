"""Idempotency keys: what a key remembers and how requests are compared."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from switchyard_kit import FieldViolation, InvalidArgument

MAX_KEY_LENGTH = 255


def check_key(key: str | None) -> str:
    """The key, or InvalidArgument when it is missing or malformed."""
    if not key:
        raise InvalidArgument(
            "this request needs an Idempotency-Key",
            [FieldViolation("Idempotency-Key", "required header")],
        )
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidArgument(
            "invalid Idempotency-Key",
            [
                FieldViolation(
                    "Idempotency-Key", f"1 to {MAX_KEY_LENGTH} printable ASCII characters"
                )
            ],
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
