from __future__ import annotations

import pytest
from auth_service.domain.passwords import PasswordPolicy, common_passwords
from switchyard_kit import FieldViolation

policy = PasswordPolicy()


def test_ships_a_real_common_password_list() -> None:
    passwords = common_passwords()
    assert len(passwords) > 19_000
    assert {"password", "123456", "qwerty", "iloveyou"} <= passwords


@pytest.mark.parametrize("password", ["correct horse battery", "Tr0ub4dor&3-xyz", "8charsOK"])
def test_accepts_long_enough_uncommon_passwords(password: str) -> None:
    assert policy.violations(password, field="password") == []


@pytest.mark.parametrize(
    ("password", "description"),
    [
        ("", "is required"),
        ("short", "must be at least 8 characters"),
        ("x" * 257, "must be at most 256 characters"),
        ("password", "is too common; choose a less guessable password"),
        ("PassWord1", "is too common; choose a less guessable password"),
        ("iloveyou", "is too common; choose a less guessable password"),
    ],
)
def test_refuses(password: str, description: str) -> None:
    assert policy.violations(password, field="password") == [
        FieldViolation("password", description)
    ]


def test_length_is_counted_in_characters() -> None:
    assert policy.violations("é" * 256, field="password") == []
    assert policy.violations("日本語のパス", field="password")[0].description.startswith(
        "must be at least"
    )


def test_refuses_the_email_address_itself() -> None:
    violations = policy.violations(
        "Ann.Lee@Example.com", field="password", personal=["ann.lee@example.com", "ann.lee"]
    )
    assert violations == [FieldViolation("password", "must not be your email address")]


def test_field_path_is_the_callers() -> None:
    assert policy.violations("short", field="new_password")[0].field == "new_password"
