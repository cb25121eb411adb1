from __future__ import annotations

import pytest
from auth_service.domain.display_names import InvalidDisplayName, normalize_display_name
from switchyard_kit.text import text_problem


def test_trims_and_composes() -> None:
    assert normalize_display_name("  Ann Lee ") == "Ann Lee"
    assert normalize_display_name("Ame\u0301lie") == "Amélie"


def test_empty_is_allowed() -> None:
    assert normalize_display_name("   ") == ""


def test_emoji_sequences_are_allowed() -> None:
    assert (
        normalize_display_name("Ann \U0001f469\u200d\U0001f4bb") == "Ann \U0001f469\u200d\U0001f4bb"
    )


@pytest.mark.parametrize(
    "name", ["a" * 65, "Ann\nLee", "Ann\x00", "Ann\u2028Lee", "Ann\u202eeeL", "\u2066Ann"]
)
def test_refuses(name: str) -> None:
    with pytest.raises(InvalidDisplayName):
        normalize_display_name(name)


@pytest.mark.parametrize(
    "name", ["Ann", "Ann\tLee", "Ann\x1b[31m", "Ann\u2029Lee", "Ann\u200fLee", "Ann\u061c"]
)
def test_the_rule_is_the_kits(name: str) -> None:
    # One rule in one place: auth refuses exactly what switchyard_kit.text
    # refuses in a one-line field, with its words.
    problem = text_problem(name)
    if problem is None:
        assert normalize_display_name(name) == name
    else:
        with pytest.raises(InvalidDisplayName, match=problem):
            normalize_display_name(name)
