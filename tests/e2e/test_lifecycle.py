"""Each service process starts, reports SERVING, and on SIGTERM reports
NOT_SERVING, drains and exits cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchyard_dev.launcher import SERVICES, PlatformConfig, grpc_serving

from e2e.harness import free_port


def _status(target: str) -> int | None:
    with grpc.insecure_channel(target) as channel:
        try:
            return (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                .status
            )
        except grpc.RpcError:
            return None


@pytest.mark.parametrize("service", SERVICES)
def test_service_serves_then_drains_on_sigterm(service: str, tmp_path: Path) -> None:
    port = free_port()
    config = PlatformConfig(ports={service: port}, data_dir=tmp_path)
    env = config.base_env() | {
        # The pause between NOT_SERVING and stopping is what lets a load
        # balancer (and this test) see the service leave.
        f"{service.upper()}_SHUTDOWN_DELAY_SECONDS": "1.5",
        f"{service.upper()}_GRACE_SECONDS": "2",
    }
    module = f"{service}_service"
    subprocess.run([sys.executable, "-m", module, "migrate"], env=env, check=True, timeout=60)
    process = subprocess.Popen([sys.executable, "-m", module, "serve"], env=env)
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not grpc_serving(target):
            assert process.poll() is None, f"{service} exited early"
            assert time.monotonic() < deadline, f"{service} never became SERVING"
            time.sleep(0.1)

        process.send_signal(signal.SIGTERM)
        seen_not_serving = False
        while process.poll() is None and time.monotonic() < deadline + 10:
            if _status(target) == health_pb2.HealthCheckResponse.NOT_SERVING:
                seen_not_serving = True
            time.sleep(0.05)
        assert seen_not_serving, "health never reported NOT_SERVING while draining"
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
