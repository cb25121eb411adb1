"""The auth service as the kit's GrpcService: servicer, readiness, shutdown."""

from __future__ import annotations

import threading

import grpc
from switchyard.auth.v1 import auth_pb2_grpc
from switchyard_kit import GrpcService

from auth_service.bootstrap import AuthApplication, token_lifetime
from auth_service.entrypoints.grpc_servicer import SERVICE_NAME, AuthServicer


def grpc_service(application: AuthApplication) -> GrpcService:
    """What `switchyard_kit.serve` (or `RunningServer` in tests) runs.
    Ready when the database answers. A background thread republishes
    revocations Redis missed (see service_layer.revocations)."""
    stop = threading.Event()
    resync = threading.Thread(
        target=application.revocations.run, args=(stop,), name="revocation-resync", daemon=True
    )

    def register(server: grpc.Server) -> None:
        servicer = AuthServicer(
            application.auth,
            application.keys,
            int(token_lifetime(application.settings).total_seconds()),
        )
        auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
        if application.settings.redis_url:
            application.revocations.republish_all()
        resync.start()

    def on_stop() -> None:
        stop.set()
        application.close()

    return GrpcService(
        name="auth",
        register=register,
        service_names=[SERVICE_NAME],
        is_ready=application.database.ping,
        on_stop=on_stop,
    )
