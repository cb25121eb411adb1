from __future__ import annotations

import json

import grpc
import pytest
from gateway.problems import GRPC_TO_HTTP, ApiError, FieldError, from_rpc_error, problem_response
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class FakeCallError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What a failed unary call raises: an RpcError that is also a Call."""

    def __init__(
        self, code: grpc.StatusCode, message: str, status: status_pb2.Status | None = None
    ):
        self._code = code
        self._message = message
        self._trailers = ()
        if status is not None:
            self._trailers = rpc_status.to_status(status).trailing_metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers  # type: ignore[return-value]

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.CANCELLED, 499),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNKNOWN, 500),
    ],
)
def test_grpc_codes_map_to_http_statuses(code: grpc.StatusCode, status: int) -> None:
    assert GRPC_TO_HTTP[code] == status
    error = from_rpc_error(FakeCallError(code, "message"), "profile")
    assert error.status == status
    assert error.code == code.name


def test_every_grpc_code_is_in_the_table() -> None:
    assert set(GRPC_TO_HTTP) == set(grpc.StatusCode)


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def test_field_violations_and_retry_info_are_passed_on() -> None:
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message="display_name is too long",
        details=[
            _packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="display_name", description="at most 64 characters"
                        )
                    ]
                )
            ),
            _packed(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=7))),
            _packed(error_details_pb2.ErrorInfo(reason="TOO_LONG", domain="switchyard.dev")),
        ],
    )
    error = from_rpc_error(
        FakeCallError(grpc.StatusCode.INVALID_ARGUMENT, "display_name is too long", status),
        "profile",
    )
    assert error.status == 400
    assert error.detail == "display_name is too long"
    assert error.errors == [FieldError("display_name", "at most 64 characters")]
    assert error.headers == {"Retry-After": "7"}
    assert error.reason == "TOO_LONG"


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN])
def test_internal_messages_are_not_leaked(code: grpc.StatusCode) -> None:
    error = from_rpc_error(FakeCallError(code, "psycopg2 password=hunter2 at db:5432"), "profile")
    assert "psycopg2" not in error.detail
    assert "hunter2" not in json.dumps(error.body("r"))


def test_transport_failures_get_the_gateways_words() -> None:
    error = from_rpc_error(
        FakeCallError(
            grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; ipv4:10.0.0.1"
        ),
        "profile",
    )
    assert error.status == 503
    assert "10.0.0.1" not in error.detail
    assert "profile" in error.detail


def test_problem_json_shape() -> None:
    error = ApiError(
        400, "invalid request: email", errors=[FieldError("email", "must be a string")]
    )
    response = problem_response(error, "req-1")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_data()) == {
        "type": "https://switchyard.dev/problems/invalid-argument",
        "title": "Bad Request",
        "status": 400,
        "detail": "invalid request: email",
        "code": "INVALID_ARGUMENT",
        "request_id": "req-1",
        "errors": [{"field": "email", "description": "must be a string"}],
    }


def test_problem_headers_are_set() -> None:
    error = ApiError(429, "slow down", headers={"Retry-After": "3"})
    response = problem_response(error, None)
    assert response.headers["Retry-After"] == "3"
    assert json.loads(response.get_data())["code"] == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(
    ("reason", "status"),
    [("IDEMPOTENCY_KEY_REUSED", 422), ("INSUFFICIENT_FUNDS", 400)],
)
def test_the_error_reason_can_refine_the_http_status(reason: str, status: int) -> None:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="switchyard.dev"))
    rpc = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message="refused", details=[info])
    error = from_rpc_error(
        FakeCallError(grpc.StatusCode.FAILED_PRECONDITION, "refused", rpc), "payment"
    )
    assert (error.status, error.code) == (status, "FAILED_PRECONDITION")
