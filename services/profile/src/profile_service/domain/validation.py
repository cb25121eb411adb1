"""Rules for each profile field. Each check returns None when the value is
acceptable, else a sentence saying what is wrong (a field violation's
description); `normalize_*` return the value to store."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import urlsplit

import langcodes
from switchyard_kit.text import normalize_line, text_problem

DISPLAY_NAME_MAX = 64
BIO_MAX = 500
AVATAR_URL_MAX = 2048
LOCALE_MAX = 128
PREFERENCES_MAX_ENTRIES = 32
PREFERENCE_KEY_MAX = 64
PREFERENCE_VALUE_MAX = 256

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_PREFERENCE_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}", re.ASCII)

# RFC 5646 section 2.1 (ABNF), as a regular expression matched case-insensitively.
_ALNUM = "[a-z0-9]"
_LANGTAG = (
    r"(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language ["-" extlang]
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    rf"(?P<variants>(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*)"
    rf"(?P<extensions>(?:-[0-9a-wy-z](?:-{_ALNUM}{{2,8}})+)*)"
    rf"(?:-(?P<privateuse>x(?:-{_ALNUM}{{1,8}})+))?"
)
_PRIVATEUSE = rf"x(?:-{_ALNUM}{{1,8}})+"
_GRANDFATHERED = (
    # irregular
    "en-gb-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo"
    "|i-pwn|i-tao|i-tay|i-tsu|sgn-be-fr|sgn-be-nl|sgn-ch-de"
    # regular
    "|art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
_LANGUAGE_TAG = re.compile(
    rf"(?:{_LANGTAG}|(?P<private>{_PRIVATEUSE})|(?P<grandfathered>{_GRANDFATHERED}))",
    re.IGNORECASE | re.ASCII,
)


def is_user_id(value: str) -> bool:
    """True for a UUID in its canonical 8-4-4-4-12 hex form (any case)."""
    return _UUID.fullmatch(value) is not None


def normalize_user_id(value: str) -> str:
    """The stored form of a user id: lowercase (call after `is_user_id`)."""
    return value.lower()


def normalize_display_name(value: str) -> str:
    """NFC and trimmed: the kit's one form, which auth stores at signup too."""
    return normalize_line(value)


def check_display_name(raw: str) -> str | None:
    """`raw` is the name as sent: at most 64 characters (profile.proto's
    max_len, so NFC lengthening a few characters cannot refuse a name the
    contract admits), one line of text (the kit's rule, which auth applies at
    signup too), and not empty once trimmed."""
    if len(raw) > DISPLAY_NAME_MAX:
        return f"must be at most {DISPLAY_NAME_MAX} characters"
    if not normalize_display_name(raw):
        return "must not be empty"
    return text_problem(raw)


def check_bio(value: str) -> str | None:
    """Multi-line text: line breaks and tabs are allowed, other controls and
    bidi overrides are not (the kit's rule)."""
    if len(value) > BIO_MAX:
        return f"must be at most {BIO_MAX} characters"
    return text_problem(value, multiline=True)


def check_avatar_url(value: str) -> str | None:
    """Empty (no avatar) or an absolute https URL with a host and no credentials."""
    if not value:
        return None
    if len(value) > AVATAR_URL_MAX:
        return f"must be at most {AVATAR_URL_MAX} characters"
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        return "must not contain spaces or control characters"
    return _https_url_problem(value)


def _https_url_problem(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        # Reading the port validates it (a non-numeric or out-of-range port raises).
        _ = parts.port
    except ValueError:
        return "must be a valid https URL"
    problem = None
    if parts.scheme.lower() != "https":
        problem = "must be an https URL"
    elif not parts.hostname:
        problem = "must be an https URL with a host"
    elif parts.username is not None or parts.password is not None:
        problem = "must not contain credentials"
    return problem


def check_locale(value: str) -> str | None:
    """Empty (unset) or a well-formed and valid BCP 47 (RFC 5646) language tag.

    Well-formed is the RFC's ABNF, checked strictly (so "en_US" is refused);
    valid means every subtag is in the IANA registry (checked with langcodes),
    and no variant or extension singleton appears twice.
    """
    if not value:
        return None
    if len(value) > LOCALE_MAX:
        return f"must be at most {LOCALE_MAX} characters"
    problem = _language_tag_syntax_problem(value)
    if problem is None and not langcodes.tag_is_valid(value):
        problem = "must use registered language, script and region subtags"
    return problem


def _language_tag_syntax_problem(value: str) -> str | None:
    match = _LANGUAGE_TAG.fullmatch(value)
    if match is None:
        return 'must be a BCP 47 language tag such as "en" or "pt-BR"'
    if match.group("language") is None:
        return None  # private use or grandfathered: no variants or extensions
    variants = [v.lower() for v in match.group("variants").split("-") if v]
    if len(set(variants)) != len(variants):
        return "must not repeat a variant subtag"
    singletons = [s.lower() for s in match.group("extensions").split("-") if len(s) == 1]
    if len(set(singletons)) != len(singletons):
        return "must not repeat an extension"
    return None


def normalize_locale(value: str) -> str:
    """RFC 5646 section 2.1.1 case conventions: "pt-br" -> "pt-BR", "zh-hant" -> "zh-Hant".

    Subtags after a singleton (extensions, private use) stay lowercase.
    """
    subtags = value.split("-")
    formatted = [subtags[0].lower()]
    after_singleton = len(subtags[0]) == 1
    for subtag in subtags[1:]:
        if after_singleton or len(subtag) == 1:
            after_singleton = True
            formatted.append(subtag.lower())
        elif len(subtag) == 2 and subtag.isalpha():
            formatted.append(subtag.upper())
        elif len(subtag) == 4 and subtag.isalpha():
            formatted.append(subtag.title())
        else:
            formatted.append(subtag.lower())
    return "-".join(formatted)


def check_preferences(preferences: Mapping[str, str]) -> list[str]:
    """Every problem with the map: entry count, then each bad key or value."""
    problems: list[str] = []
    if len(preferences) > PREFERENCES_MAX_ENTRIES:
        problems.append(f"must have at most {PREFERENCES_MAX_ENTRIES} entries")
    for key in sorted(preferences):
        value = preferences[key]
        shown = _shorten(key)
        if _PREFERENCE_KEY.fullmatch(key) is None:
            problems.append(
                f"key {shown} must be 1 to {PREFERENCE_KEY_MAX} characters of A-Z a-z 0-9 _ . -"
            )
        value_problem = (
            f"must be at most {PREFERENCE_VALUE_MAX} characters"
            if len(value) > PREFERENCE_VALUE_MAX
            else text_problem(value, multiline=True)
        )
        if value_problem is not None:
            problems.append(f"value of {shown} {value_problem}")
    return problems


def _shorten(text: str, limit: int = 40) -> str:
    """A key quoted for an error message, cut, and escaped when it is not
    safe to show as it is."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return ascii(shown) if text_problem(shown) is not None else f'"{shown}"'
