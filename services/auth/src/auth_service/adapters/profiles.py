"""The profile service's CreateProfile, called during signup.

Why a call as well as the UserRegistered event: the event reaches the profile
service a moment after signup answers (relay poll, stream, worker), and until
then everyone but the owner reads 404 for the new profile. The call closes
that gap whenever the profile service is up; the event stays the
at-least-once backup for when it is not (CreateProfile is idempotent, so the
two never make two profiles).
"""

from __future__ import annotations

import logging

import grpc
from prometheus_client import Counter
from switchyard.profile.v1 import profile_pb2
from switchyard_kit import Backend, DeadlineExceeded, outgoing_timeout

logger = logging.getLogger(__name__)

_CREATE_PROFILE = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].methods_by_name[
    "CreateProfile"
]

PROFILES_DEFERRED = Counter(
    "auth_signup_profiles_deferred_total",
    "Signups whose profile was left to the UserRegistered event: the profile "
    "service did not answer CreateProfile in time (by gRPC status code).",
    ["code"],
)


class GrpcProfileDirectory:
    """CreateProfile on the profile service, bounded by `timeout_seconds` and
    by what is left of the signup's own deadline."""

    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._backend = Backend("profile", target, _CREATE_PROFILE.containing_service)
        self._timeout_seconds = timeout_seconds

    def create_profile(self, user_id: str, display_name: str) -> bool:
        request = profile_pb2.CreateProfileRequest(user_id=user_id, display_name=display_name)
        try:
            timeout = outgoing_timeout(None, self._timeout_seconds)
            self._backend.unary_call(_CREATE_PROFILE)(request, timeout=timeout)
        except DeadlineExceeded:
            PROFILES_DEFERRED.labels("DEADLINE_EXCEEDED").inc()
            logger.warning("profile of %s left to the event: no time left", user_id)
            return False
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            PROFILES_DEFERRED.labels(code).inc()
            logger.warning("profile of %s left to the event: CreateProfile %s", user_id, code)
            return False
        return True

    def close(self) -> None:
        self._backend.close()
