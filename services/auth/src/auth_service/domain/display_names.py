"""Display names as given at signup (the profile service owns them afterwards)."""

from __future__ import annotations

from switchyard_kit.text import normalize_line, text_problem

MAX_DISPLAY_NAME_LENGTH = 64


class InvalidDisplayName(ValueError):
    """The display name breaks a rule; the message says which."""


def normalize_display_name(raw: str) -> str:
    """`raw` trimmed and in Unicode NFC; "" when none was given (it is optional:
    the profile service then picks a default name). The characters allowed
    are the kit's one-line text rule (`switchyard_kit.text`), which the
    profile service applies to the name too.

    Example::

        normalize_display_name("  Ann Lee ")   # "Ann Lee"
    """
    # The length is the name as sent (auth.proto's max_len): NFC may lengthen
    # a few characters, and a name the contract admits must not then fail.
    if len(raw) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidDisplayName(f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters")
    name = normalize_line(raw)
    problem = text_problem(name)
    if problem is not None:
        raise InvalidDisplayName(problem)
    return name
