import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from switchyard_kit import (
    AlreadyExists,
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    to_rpc_status,
)


def _status(error: DomainError) -> status_pb2.Status:
    rpc = to_rpc_status(error, "example")
    metadata = dict(rpc.trailing_metadata)
    return status_pb2.Status.FromString(metadata["grpc-status-details-bin"])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgument("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("none"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("dup"), grpc.StatusCode.ALREADY_EXISTS),
        (ResourceExhausted("slow down"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
def test_domain_errors_become_their_grpc_code(error: DomainError, code: grpc.StatusCode) -> None:
    rpc = to_rpc_status(error, "example")
    assert rpc.code == code
    assert rpc.details == error.message


def test_field_violations_travel_as_bad_request_details() -> None:
    error = InvalidArgument(
        "invalid profile",
        [FieldViolation("bio", "at most 500 characters"), FieldViolation("locale", "bad tag")],
    )
    details = _status(error).details
    bad_request = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad_request) for d in details)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("bio", "at most 500 characters"),
        ("locale", "bad tag"),
    ]


def test_every_error_carries_its_reason_and_service() -> None:
    details = _status(AlreadyExists("taken", reason="EMAIL_TAKEN")).details
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in details)
    assert (info.reason, info.metadata["service"]) == ("EMAIL_TAKEN", "example")


def test_resource_exhausted_says_when_to_retry() -> None:
    details = _status(ResourceExhausted("slow down", retry_after_seconds=2.2)).details
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in details)
    assert retry.retry_delay.seconds == 3
