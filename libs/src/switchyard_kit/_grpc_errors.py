"""Domain errors -> gRPC status with google.rpc details, and back."""

from __future__ import annotations

import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from switchyard_kit._errors import DomainError, InvalidArgument, ResourceExhausted

ERROR_DOMAIN = "switchyard.dev"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_rpc_status(error: DomainError, service: str) -> grpc.Status:
    """The gRPC status (code, message, details) that reports `error` to the caller."""
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata={"service": service}
            )
        )
    ]
    if isinstance(error, InvalidArgument) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, ResourceExhausted):
        seconds = max(1, math.ceil(error.retry_after_seconds))
        details.append(
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
        )
    status = status_pb2.Status(
        code=getattr(code_pb2, error.code), message=error.message, details=details
    )
    return rpc_status.to_status(status)


def status_details(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a failed call carried in its trailers, if any."""
    if not isinstance(error, grpc.Call):
        return None
    try:
        return rpc_status.from_call(error)
    except ValueError:
        # Trailers that disagree with the status code are not to be trusted.
        return None
