"""Money: an integer count of minor units and an ISO 4217 currency.

The exponent of each currency comes from the ISO 4217 data shipped by the
`iso4217` package (the maintenance agency's list), never from guesswork;
codes without a minor unit (gold, SDR, test codes) are not money here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import iso4217

# Largest integer a JSON client (IEEE double) represents exactly: 2^53 - 1.
MAX_AMOUNT = 2**53 - 1


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int


@cache
def find_currency(code: str) -> Currency | None:
    """The ISO 4217 currency `code` (upper case), or None when it is not one we take."""
    if len(code) != 3 or not code.isascii() or not code.isupper():
        return None
    try:
        entry = iso4217.Currency(code)
    except ValueError:
        return None
    if entry.exponent is None:
        return None
    return Currency(code=entry.code, exponent=entry.exponent)


def amount_problem(amount: int) -> str | None:
    """Why `amount` is not a valid positive amount of minor units, or None."""
    if amount <= 0:
        return "must be a positive integer number of minor units"
    if amount > MAX_AMOUNT:
        return f"must be at most {MAX_AMOUNT}"
    return None


def currency_problem(code: str) -> str | None:
    """Why `code` is not a currency we take, or None."""
    if not code:
        return "required: an ISO 4217 code such as EUR"
    if find_currency(code) is None:
        return "unknown currency: expected an ISO 4217 code with minor units, such as EUR"
    return None
