"""The one clock every service reads: the current time, aware, in UTC.

Standard library only, so domain code may import it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime.

    Handlers take a `clock` argument defaulting to this, so tests pass a fixed one.

    Example::

        created_at = utc_now()
    """
    return datetime.now(UTC)
