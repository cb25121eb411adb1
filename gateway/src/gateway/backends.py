"""The backends the gateway exposes: one entry per service.

Adding a service to the public API is one line in BACKENDS (its name, whose
`<NAME>_TARGET` setting holds the address, and its service descriptor) plus
that setting; every RPC of the service with a `google.api.http` option then
becomes a route with no other gateway code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import descriptor
from switchyard.auth.v1 import auth_pb2
from switchyard.payment.v1 import payment_pb2
from switchyard.profile.v1 import profile_pb2
from switchyard.recommendation.v1 import recommendation_pb2
from switchyard_kit import Backend

from gateway.settings import GatewaySettings


@dataclass(frozen=True)
class BackendSpec:
    """A backend service: its name (also its settings prefix) and its gRPC service."""

    name: str
    service: descriptor.ServiceDescriptor


AUTH = BackendSpec("auth", auth_pb2.DESCRIPTOR.services_by_name["AuthService"])
PROFILE = BackendSpec("profile", profile_pb2.DESCRIPTOR.services_by_name["ProfileService"])

PAYMENT = BackendSpec("payment", payment_pb2.DESCRIPTOR.services_by_name["PaymentService"])

RECOMMENDATION = BackendSpec(
    "recommendation",
    recommendation_pb2.DESCRIPTOR.services_by_name["RecommendationService"],
)

BACKENDS: tuple[BackendSpec, ...] = (AUTH, PROFILE, PAYMENT, RECOMMENDATION)


def build_backends(
    settings: GatewaySettings, specs: Sequence[BackendSpec] = BACKENDS
) -> list[Backend]:
    """One kit Backend per spec; each opens its channel on first use in each process."""
    return [Backend(spec.name, settings.backend_target(spec.name), spec.service) for spec in specs]
