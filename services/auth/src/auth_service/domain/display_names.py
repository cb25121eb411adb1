"""Display names as given at signup (the profile service owns them afterwards)."""

from __future__ import annotations

import unicodedata

MAX_DISPLAY_NAME_LENGTH = 64
# Control characters (newlines, NUL, escapes) and line/paragraph separators
# would corrupt every place the name is shown; format characters (Cf, such as
# emoji joiners) are allowed. The same rule as the profile service's.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


class InvalidDisplayName(ValueError):
    """The display name breaks a rule; the message says which."""


def normalize_display_name(raw: str) -> str:
    """`raw` trimmed and in Unicode NFC; "" when none was given (it is optional:
    the profile service then picks a default name).

    Example::

        normalize_display_name("  Ann Lee ")   # "Ann Lee"
    """
    name = unicodedata.normalize("NFC", raw).strip()
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidDisplayName(f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters")
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in name):
        raise InvalidDisplayName("must not contain control characters or line breaks")
    return name
