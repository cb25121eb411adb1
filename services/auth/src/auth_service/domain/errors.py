"""The auth service's own domain errors, with the reasons clients may branch on."""

from __future__ import annotations

from switchyard_kit import AlreadyExists, Unauthenticated


class EmailTaken(AlreadyExists):
    """An account with this (normalised) email address exists already."""

    default_reason = "EMAIL_TAKEN"

    def __init__(self) -> None:
        super().__init__("an account with this email address already exists")


class InvalidCredentials(Unauthenticated):
    """Wrong email or password. One message for both, so a caller cannot tell
    which accounts exist."""

    default_reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("invalid email or password")
