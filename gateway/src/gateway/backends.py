"""The backends the gateway exposes: one per service of the registry.

The registry (switchyard/services.toml, read with `switchyard.services`) names
each service's gRPC service and generated module; its `<NAME>_TARGET` setting
holds the address. Every RPC of a service with a `google.api.http` option then
becomes a route with no gateway code: adding a service to the public API is
adding its registry entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import descriptor
from switchyard.services import ServiceEntry, load_services
from switchyard_kit import Backend

from gateway.settings import GatewaySettings


@dataclass(frozen=True)
class BackendSpec:
    """A backend service: its name (also its settings prefix) and its gRPC service."""

    name: str
    service: descriptor.ServiceDescriptor


def backend_spec(entry: ServiceEntry) -> BackendSpec:
    """The spec of a registry entry: its service descriptor, from its generated module."""
    module = importlib.import_module(entry.proto_module)
    file: descriptor.FileDescriptor = module.DESCRIPTOR
    service = file.services_by_name.get(entry.grpc_service_name)
    if service is None or service.full_name != entry.grpc_service:
        raise LookupError(f"{entry.proto_module} defines no service {entry.grpc_service}")
    return BackendSpec(entry.name, service)


BACKENDS: tuple[BackendSpec, ...] = tuple(backend_spec(entry) for entry in load_services())
_BY_NAME = {spec.name: spec for spec in BACKENDS}

# By name, for the tests that start a few backends of their own.
AUTH = _BY_NAME["auth"]
PROFILE = _BY_NAME["profile"]
PAYMENT = _BY_NAME["payment"]
RECOMMENDATION = _BY_NAME["recommendation"]


def build_backends(
    settings: GatewaySettings, specs: Sequence[BackendSpec] = BACKENDS
) -> list[Backend]:
    """One kit Backend per spec; each opens its channel on first use in each process."""
    return [Backend(spec.name, settings.backend_target(spec.name), spec.service) for spec in specs]
