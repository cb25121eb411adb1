from __future__ import annotations

import pytest
from auth_service.domain.display_names import InvalidDisplayName, normalize_display_name


def test_trims_and_composes() -> None:
    assert normalize_display_name("  Ann Lee ") == "Ann Lee"
    assert normalize_display_name("Ame\u0301lie") == "Amélie"


def test_empty_is_allowed() -> None:
    assert normalize_display_name("   ") == ""


def test_emoji_sequences_are_allowed() -> None:
    assert (
        normalize_display_name("Ann \U0001f469\u200d\U0001f4bb") == "Ann \U0001f469\u200d\U0001f4bb"
    )


@pytest.mark.parametrize("name", ["a" * 65, "Ann\nLee", "Ann\x00", "Ann\u2028Lee"])
def test_refuses(name: str) -> None:
    with pytest.raises(InvalidDisplayName):
        normalize_display_name(name)
