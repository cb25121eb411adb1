from __future__ import annotations

import pytest
from auth_service.domain.emails import InvalidEmail, normalize_email


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann.Lee@EXAMPLE.com\t", "ann.lee@example.com"),
        ("ANN+news@Example.ORG", "ann+news@example.org"),
        ("ann@bücher.example", "ann@bücher.example"),
    ],
)
def test_normalizes_case_whitespace_and_domain(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


def test_does_not_look_up_the_domain() -> None:
    # A domain that cannot resolve is accepted: deliverability checks are off.
    assert normalize_email("ann@no-such-domain-for-switchyard-tests.com").startswith("ann@")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.com",
        "ann@@example.com",
        "ann example@example.com",
        "ann@localhost",
        "ann@example..com",
        "ann@" + "a" * 250 + ".com",
    ],
)
def test_refuses_malformed_addresses(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


def test_required_message() -> None:
    with pytest.raises(InvalidEmail, match="is required"):
        normalize_email("  ")
