"""The auth service's own domain errors, with the reasons clients may branch on."""

from __future__ import annotations

from switchyard_kit import AlreadyExists, NotFound, ResourceExhausted, Unauthenticated


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


class InvalidRefreshToken(Unauthenticated):
    """The refresh token is unknown, expired, revoked or already spent."""

    default_reason = "INVALID_REFRESH_TOKEN"

    def __init__(self, message: str = "the refresh token is invalid or expired") -> None:
        super().__init__(message)


class RefreshTokenReused(Unauthenticated):
    """A spent refresh token came back: its session has been revoked."""

    default_reason = "REFRESH_TOKEN_REUSED"

    def __init__(self) -> None:
        super().__init__(
            "this refresh token was already used; its session has been ended, sign in again"
        )


class SessionNotFound(NotFound):
    """No active session with this id belongs to the caller."""

    default_reason = "SESSION_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("no such session")


class WrongPassword(Unauthenticated):
    """The current password given to change it does not match."""

    default_reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("the current password is wrong")


class LoginThrottled(ResourceExhausted):
    """Too many failed logins for this account or address: wait and retry."""

    default_reason = "TOO_MANY_FAILED_LOGINS"

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(
            "too many failed sign-in attempts; try again later",
            retry_after_seconds=retry_after_seconds,
        )


class PasswordHashingBusy(ResourceExhausted):
    """Every password-hashing slot and its queue are taken: shed, try again soon."""

    default_reason = "PASSWORD_HASHING_BUSY"

    def __init__(self, retry_after_seconds: float = 1.0) -> None:
        super().__init__(
            "the service is busy checking passwords; try again shortly",
            retry_after_seconds=retry_after_seconds,
        )
