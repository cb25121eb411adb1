"""What a SKU looks like: one rule for the service that takes it (payment, at
its API) and the one that learns from it (recommendation, from the events).

A SKU is 1 to 64 characters: a letter or digit, then letters, digits, ``.``,
``_`` or ``-`` — `SKU_PATTERN`, always matched whole (`re.fullmatch`), so no
markup, spaces, line breaks or other characters a list of SKUs could carry to
someone's screen.

This module imports only the standard library, so domain code may use it.
"""

from __future__ import annotations

import re

SKU_MAX_LENGTH = 64
SKU_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
SKU_RULE = "1 to 64 characters of [A-Za-z0-9._-], starting with a letter or digit"


def sku_problem(value: str) -> str | None:
    """None for a valid SKU, else a sentence saying why not (a field
    violation's description).

    Example::

        sku_problem("tea-earl-grey.250g")     # None
        sku_problem("<svg onload=alert(1)>")  # "must be 1 to 64 characters of ..."
    """
    if SKU_PATTERN.fullmatch(value) is None:
        return f"must be {SKU_RULE}"
    return None
