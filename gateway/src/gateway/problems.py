"""RFC 9457 problem+json: every error the gateway answers, in one shape.

`ApiError` is raised anywhere in a request; the app's error handler turns it
into a response. gRPC failures become ApiErrors through `from_rpc_error`,
using the one status table below.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from flask import Response
from google.rpc import error_details_pb2
from switchyard_kit import status_details

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://switchyard.dev/problems/"

# gRPC status -> HTTP status (google.rpc.Code, as DESIGN.md lists it).
GRPC_TO_HTTP: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# Where a status code alone cannot say it, the ErrorInfo reason picks the HTTP
# status: reusing an Idempotency-Key with another body is 422, as in the
# payment APIs clients know (FAILED_PRECONDITION alone would be 400).
REASON_TO_HTTP: Mapping[str, int] = {
    "IDEMPOTENCY_KEY_REUSED": 422,
}

# The gRPC status name reported for an HTTP error the gateway raises itself.
HTTP_TO_CODE: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

TITLES: Mapping[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Messages of these statuses come from a crash, not from a decision: never shown.
_HIDDEN_DETAIL = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}


@dataclass(frozen=True)
class FieldError:
    """One rejected field: its path in the request and why."""

    field: str
    description: str


@dataclass
class ApiError(Exception):
    """An error answered as problem+json.

    Example::

        raise ApiError(400, "the body is not valid JSON", errors=[FieldError("", "...")])
    """

    status: int
    detail: str
    code: str = ""
    errors: Sequence[FieldError] = ()
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.detail)
        if not self.code:
            self.code = HTTP_TO_CODE.get(self.status, "UNKNOWN")

    @property
    def title(self) -> str:
        return TITLES.get(self.status, "Error")

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.code.lower().replace("_", "-")

    def body(self, request_id: str | None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "request_id": request_id,
        }
        if self.errors:
            problem["errors"] = [
                {"field": item.field, "description": item.description} for item in self.errors
            ]
        if self.reason:
            problem["reason"] = self.reason
        return problem


def invalid_argument(detail: str, field_path: str, description: str | None = None) -> ApiError:
    """A 400 that names one field of the request."""
    return ApiError(400, detail, errors=[FieldError(field_path, description or detail)])


def problem_response(error: ApiError, request_id: str | None) -> Response:
    response = Response(
        json.dumps(error.body(request_id)), status=error.status, mimetype=PROBLEM_CONTENT_TYPE
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status of a gRPC status code (500 for any code not in the table)."""
    return GRPC_TO_HTTP.get(code, 500)


def from_rpc_error(error: grpc.RpcError, backend: str) -> ApiError:
    """The ApiError that reports a failed call to `backend`.

    The service's message and field violations are passed on, except for
    INTERNAL/UNKNOWN, whose messages may carry internals. Transport failures
    (no google.rpc.Status attached) get a message of the gateway's own.
    """
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    status = http_status(code)
    details = status_details(error)
    errors: list[FieldError] = []
    headers: dict[str, str] = {}
    reason: str | None = None
    if details is not None:
        for packed in details.details:
            if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                packed.Unpack(bad_request)
                errors.extend(
                    FieldError(v.field, v.description) for v in bad_request.field_violations
                )
            elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                packed.Unpack(retry)
                delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
                headers["Retry-After"] = str(max(1, math.ceil(delay)))
            elif packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                reason = info.reason or None
    if code in _HIDDEN_DETAIL:
        detail = "the request failed because of an internal error"
        errors, reason = [], None
    elif details is not None and details.message:
        detail = details.message
    elif code == grpc.StatusCode.UNAVAILABLE:
        detail = f"the {backend} service is unavailable; try again later"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        detail = f"the {backend} service did not answer in time"
    elif code == grpc.StatusCode.CANCELLED:
        detail = "the request was cancelled"
    else:
        message = error.details() if isinstance(error, grpc.Call) else None
        detail = message or code.name.lower().replace("_", " ")
    if reason is not None:
        status = REASON_TO_HTTP.get(reason, status)
    return ApiError(status, detail, code=code.name, errors=errors, headers=headers, reason=reason)
