"""Email addresses: syntax checks and the one normalised form accounts are keyed by."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

# RFC 5321 caps a forward path at 256 octets, so an address at 254 characters.
MAX_EMAIL_LENGTH = 254


class InvalidEmail(ValueError):
    """The address is not one mail can be delivered to; the message says why."""


def normalize_email(raw: str) -> str:
    """The canonical form of `raw`: trimmed, syntax-checked, domain in IDNA
    normal form, and lower-cased as a whole so `Ann@Example.com` and
    `ann@example.com` are one account.

    No network: deliverability (DNS) is not checked, so signup never waits on a
    resolver and works offline.

    Example::

        normalize_email("  Ann.Lee@EXAMPLE.com ")   # "ann.lee@example.com"
    """
    candidate = raw.strip()
    if not candidate:
        raise InvalidEmail("is required")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        validated = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return validated.normalized.lower()
