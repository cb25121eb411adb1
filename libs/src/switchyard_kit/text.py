"""Which user-written text is safe to store and show: one rule for every service.

Display names (auth at signup, profile afterwards), bios, payment descriptions
and any other free text a client sends pass through `text_problem`. It refuses
what corrupts or disguises text where it is shown or stored:

- control characters (category Cc: NUL, which PostgreSQL refuses, escapes,
  carriage returns ...), except line breaks and tabs where the field is
  multi-line;
- line and paragraph separators (Zl, Zp) in one-line fields;
- the Unicode bidirectional formatting controls (Bidi_Control: U+061C,
  U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which reorder what a reader
  sees ("invoice<U+202E>fdp.exe") — the "Trojan Source" class of spoofing.

Other format characters (Cf, such as the zero-width joiner inside emoji) stay
allowed: they are text.

This module imports only the standard library, so domain code may use it.
"""

from __future__ import annotations

import unicodedata

# Unicode's Bidi_Control property (PropList.txt), the whole set.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Whitespace controls that are text in a multi-line field (a bio, a description).
MULTILINE_WHITESPACE = frozenset("\t\n\r")
_LINE_SEPARATORS = frozenset({"Zl", "Zp"})


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """None when `value` is safe to store and show, else a sentence saying why
    not (a field violation's description).

    Example::

        text_problem("Ann Lee")                         # None
        text_problem("Ann\\u202eeeL")                    # "must not contain ..."
        text_problem("line one\\nline two", multiline=True)  # None
    """
    for char in value:
        if char in BIDI_CONTROLS:
            return "must not contain bidirectional formatting characters"
        category = unicodedata.category(char)
        if category == "Cc" and not (multiline and char in MULTILINE_WHITESPACE):
            if multiline:
                return "must not contain control characters other than line breaks and tabs"
            return "must not contain control characters or line breaks"
        if category in _LINE_SEPARATORS and not multiline:
            return "must not contain control characters or line breaks"
    return None


def normalize_line(value: str) -> str:
    """`value` as stored: Unicode NFC, trimmed. One form for the same text, so
    "é" typed as one code point or as "e" + combining accent is one name
    (auth at signup and profile on every change store names this way).

    Example::

        normalize_line("  Cafe\\u0301 ")   # "Café" (one code point for é)
    """
    return unicodedata.normalize("NFC", value).strip()
