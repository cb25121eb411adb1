"""The one rule for user-written text (display names, bios, descriptions)."""

from __future__ import annotations

import pytest
from switchyard_kit.text import normalize_line, text_problem


@pytest.mark.parametrize(
    "value",
    ["Ann Lee", "Zoë Ó Briain", "👩‍💻 dev", "名前", ""],
)
def test_ordinary_text_is_accepted(value: str) -> None:
    assert text_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "nul\x00byte",
        "esc\x1b[31m",
        "two\nlines",
        "carriage\rreturn",
        "line\u2028separator",
        "para\u2029separator",
        "invoice\u202efdp.exe",
        "isolate\u2066x\u2069",
        "mark\u200f",
        "arabic letter mark\u061c",
    ],
)
def test_one_line_text_refuses_controls_separators_and_bidi_overrides(value: str) -> None:
    assert text_problem(value) is not None


def test_multiline_text_keeps_line_breaks_and_tabs_but_not_other_controls() -> None:
    assert text_problem("line one\nline two\r\n\tindented", multiline=True) is None
    assert text_problem("nul\x00", multiline=True) is not None
    assert text_problem("override\u202e", multiline=True) is not None


def test_a_line_is_stored_composed_and_trimmed() -> None:
    assert normalize_line("  Rene\u0301e\n") == "Ren\u00e9e"
    assert normalize_line("Ren\u00e9e") == "Ren\u00e9e"
