"""Field rules, table-driven: each case is a value and whether it is accepted."""

import pytest
from profile_service.domain import validation
from switchyard_kit.text import text_problem

OK = None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Ada", OK),
        ("A", OK),
        ("x" * 64, OK),
        ("Zoë Ünïcödé 李", OK),
        ("👩‍💻 dev", OK),
        ("", "must not be empty"),
        ("x" * 65, "must be at most 64 characters"),
        ("Ada\x00", "must not contain control characters or line breaks"),
        ("Ada\nLovelace", "must not contain control characters or line breaks"),
        ("Ada\tLovelace", "must not contain control characters or line breaks"),
        ("Ada\u2028", "must not contain control characters or line breaks"),
        ("Ada\x85", "must not contain control characters or line breaks"),
        ("Ada\u202egnp.exe", "must not contain bidirectional formatting characters"),
        ("\u2066Ada\u2069", "must not contain bidirectional formatting characters"),
    ],
)
def test_display_name(value: str, problem: str | None) -> None:
    assert validation.check_display_name(value) == problem


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Ada  ", "Ada"),
        ("\tAda\n", "Ada"),
        ("   ", ""),
        ("A d a", "A d a"),
        # One form for the same text, as auth stores it at signup (NFC).
        ("Rene\u0301e", "Ren\u00e9e"),
    ],
)
def test_display_name_is_trimmed_and_composed(raw: str, stored: str) -> None:
    assert validation.normalize_display_name(raw) == stored


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("x" * 500, True),
        ("line one\nline two\r\n\ttabbed", True),
        ("x" * 501, False),
        ("nul\x00byte", False),
        ("bell\x07", False),
    ],
)
def test_bio(value: str, accepted: bool) -> None:
    assert (validation.check_bio(value) is None) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("https://example.com/a.png", True),
        ("HTTPS://EXAMPLE.COM/a.png", True),
        ("https://cdn.example.com:8443/u/1/avatar.webp?size=128#x", True),
        ("https://[2001:db8::1]/a.png", True),
        ("https://example.com/" + "a" * (2048 - len("https://example.com/")), True),
        ("https://example.com/" + "a" * (2049 - len("https://example.com/")), False),
        ("http://example.com/a.png", False),
        ("ftp://example.com/a.png", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https:///path-only", False),
        ("//example.com/a.png", False),
        ("example.com/a.png", False),
        ("https://user:pw@example.com/a.png", False),
        ("https://example.com:notaport/a.png", False),
        ("https://example.com:99999/a.png", False),
        ("https://exa mple.com/a.png", False),
        ("https://example.com/a.png\n", False),
        ("https://[::1/a.png", False),
    ],
)
def test_avatar_url(value: str, accepted: bool) -> None:
    assert (validation.check_avatar_url(value) is None) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("en", True),
        ("pt-BR", True),
        ("pt-br", True),
        ("EN-us", True),
        ("zh-Hant-TW", True),
        ("sr-Latn-RS", True),
        ("es-419", True),
        ("de-CH-1996", True),
        ("sl-rozaj-biske", True),
        ("en-US-u-ca-gregory", True),
        ("en-a-bbb-x-a-ccc", True),
        ("x-private", True),
        ("i-klingon", True),
        ("en-GB-oed", True),
        ("zh-yue-HK", True),
        ("en_US", False),
        ("en-", False),
        ("-en", False),
        ("en--US", False),
        ("english", False),
        ("e", False),
        ("abcdefghi", False),
        ("en-US-", False),
        ("en-u", False),
        ("en-x", False),
        ("de-CH-1996-1996", False),
        ("en-a-bbb-a-ccc", False),
        ("xx", False),
        ("zz-ZZ", False),
        ("en-Abcd-US", False),
        ("en-Qaaz-ZZ", True),  # private-use script and region ranges are registered
        ("en US", False),
        ("en-US\n", False),
        ("\uff45\uff4e", False),  # fullwidth "en"
        ("en-" + "-".join(["a-bc"] * 40), False),
    ],
)
def test_locale(value: str, accepted: bool) -> None:
    assert (validation.check_locale(value) is None) is accepted


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("EN", "en"),
        ("pt-br", "pt-BR"),
        ("ZH-HANT-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("en-us-u-ca-gregory", "en-US-u-ca-gregory"),
        ("en-a-bb-x-ab-cdef", "en-a-bb-x-ab-cdef"),
        ("X-PRIVATE", "x-private"),
        ("sgn-be-fr", "sgn-BE-FR"),
    ],
)
def test_locale_case_is_normalized(raw: str, stored: str) -> None:
    assert validation.normalize_locale(raw) == stored


@pytest.mark.parametrize(
    ("preferences", "problems"),
    [
        ({}, 0),
        ({"theme": "dark", "ui.density": "compact", "a-b_c.9": ""}, 0),
        ({f"k{i}": "v" for i in range(32)}, 0),
        ({f"k{i}": "v" for i in range(33)}, 1),
        ({"k" * 64: "v"}, 0),
        ({"k" * 65: "v"}, 1),
        ({"": "v"}, 1),
        ({"has space": "v"}, 1),
        ({"naïve": "v"}, 1),
        ({"slash/key": "v"}, 1),
        ({"theme": "v" * 256}, 0),
        ({"theme": "v" * 257}, 1),
        ({"theme": "nul\x00"}, 1),
        ({"bad key": "v" * 257}, 2),
    ],
)
def test_preferences(preferences: dict[str, str], problems: int) -> None:
    assert len(validation.check_preferences(preferences)) == problems


def test_preference_problem_names_the_key() -> None:
    [problem] = validation.check_preferences({"bad key": "v"})
    assert '"bad key"' in problem


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("3f2a6c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5f", True),
        ("3F2A6C1E-9B7D-4C1A-8E2F-0A1B2C3D4E5F", True),
        ("3f2a6c1e9b7d4c1a8e2f0a1b2c3d4e5f", False),
        ("{3f2a6c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5f}", False),
        ("urn:uuid:3f2a6c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5f", False),
        ("3f2a6c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5g", False),
        ("", False),
        ("42", False),
    ],
)
def test_user_id(value: str, accepted: bool) -> None:
    assert validation.is_user_id(value) is accepted


SAMPLES = ["Ada", "Ada\nLovelace", "Ada\tL", "Ada\x00", "Ada\u2028", "Ada\u202e", "\u200f", "👩‍💻"]


@pytest.mark.parametrize("value", SAMPLES)
def test_text_fields_follow_the_kits_one_rule(value: str) -> None:
    # One rule in one place (switchyard_kit.text): a change there is a change
    # here, and a rule written again here would show up as a drift.
    assert validation.check_display_name(value) == text_problem(value)
    assert validation.check_bio(value) == text_problem(value, multiline=True)
    problems = validation.check_preferences({"theme": value})
    expected = text_problem(value, multiline=True)
    assert problems == ([] if expected is None else [f'value of "theme" {expected}'])
