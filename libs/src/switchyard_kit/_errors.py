"""Errors the domain raises, free of gRPC and HTTP.

The server interceptor turns them into a gRPC status with google.rpc details
(see `switchyard_kit._grpc_errors`); the gateway turns that into problem+json.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: `field` is the proto field path, `description` says why."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a service reports to its caller on purpose.

    `code` is a google.rpc.Code name; `reason` is a stable UPPER_SNAKE word that
    clients may branch on (sent as google.rpc.ErrorInfo).
    """

    code = "UNKNOWN"
    default_reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason


class InvalidArgument(DomainError):
    """Bad input. Carries the violations field by field.

    Example::

        raise InvalidArgument("invalid profile", [FieldViolation("bio", "at most 500 characters")])
    """

    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        violations: list[FieldViolation] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = list(violations or [])


class NotFound(DomainError):
    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A conflict the caller may retry (a concurrent request holds the resource)."""

    code = "ABORTED"
    default_reason = "CONFLICT"


class ResourceExhausted(DomainError):
    """Too many requests; `retry_after_seconds` tells when to come back (google.rpc.RetryInfo)."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "RATE_LIMITED"

    def __init__(
        self, message: str, *, retry_after_seconds: float = 1.0, reason: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds
