"""The auth service as the kit's GrpcService: servicer, readiness, shutdown."""

from __future__ import annotations

import grpc
from switchyard.auth.v1 import auth_pb2_grpc
from switchyard_kit import GrpcService

from auth_service.bootstrap import AuthApplication
from auth_service.entrypoints.grpc_servicer import SERVICE_NAME, AuthServicer


def grpc_service(application: AuthApplication) -> GrpcService:
    """What `switchyard_kit.serve` (or `RunningServer` in tests) runs.
    Ready when the database answers."""

    def register(server: grpc.Server) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(application.auth), server)

    return GrpcService(
        name="auth",
        register=register,
        service_names=[SERVICE_NAME],
        is_ready=application.database.ping,
        on_stop=application.close,
    )
