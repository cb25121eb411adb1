"""The profile service over gRPC (ProfileService.CreateProfile)."""

from __future__ import annotations

import grpc
from switchyard.profile.v1 import profile_pb2, profile_pb2_grpc
from switchyard_kit import REQUEST_ID_KEY, USER_ID_KEY, Backend, request_id_var

from auth_service.service_layer.ports import ProfileDirectoryError

PROFILE_SERVICE = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"]


def profile_backend(target: str) -> Backend:
    """The profile backend; its channel is made on first use, not here."""
    return Backend("profile", target, PROFILE_SERVICE)


class GrpcProfileDirectory:
    """Creates profiles through the profile service. CreateProfile is
    idempotent, so the channel retries it on UNAVAILABLE within the timeout."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def create_profile(self, user_id: str, display_name: str, *, timeout: float) -> None:
        stub = profile_pb2_grpc.ProfileServiceStub(self._backend.channel())
        # The new account is the caller from now on; the request id ties the
        # two services' logs together.
        metadata: tuple[tuple[str, str | bytes], ...] = ((USER_ID_KEY, user_id),)
        request_id = request_id_var.get()
        if request_id:
            metadata = (*metadata, (REQUEST_ID_KEY, request_id))
        try:
            stub.CreateProfile(
                profile_pb2.CreateProfileRequest(user_id=user_id, display_name=display_name),
                timeout=timeout,
                metadata=metadata,
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            raise ProfileDirectoryError(f"CreateProfile failed: {code.name}") from exc
