"""Which Idempotency-Key values Switchyard accepts: one rule for the gateway
(the HTTP header) and every service that reads the key from gRPC metadata.

1 to 255 visible ASCII characters (0x21-0x7E): no spaces, which HTTP trims
from the ends of a header value and would thus make two keys one, and no
control characters. The pattern is a JSON Schema (ECMA-262) regular
expression as well, so the OpenAPI spec can publish it as it is.

This module imports only the standard library, so domain code may use it.
"""

from __future__ import annotations

import re

MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
IDEMPOTENCY_KEY_RULE = f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (no spaces)"
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def is_idempotency_key(value: str) -> bool:
    """True when `value` may be used as an Idempotency-Key.

    Example::

        is_idempotency_key("order-1234")   # True
        is_idempotency_key("order 1234")   # False
    """
    # fullmatch: "$" alone would also accept a trailing newline.
    return _KEY.fullmatch(value) is not None
