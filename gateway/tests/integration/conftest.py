"""The real gateway process (`python -m gateway`: gunicorn with the gateway's
own worker class) for the tests that need gunicorn itself, not Flask's test
client: admission control, slow clients."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from switchyard_dev.launcher import Component, Platform
from switchyard_dev.ports import free_port


@contextmanager
def _gateway_process(settings: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """Start the gateway on a free port with `settings` (GATEWAY_*, *_TARGET)
    on top of this environment; yield its URL once /healthz answers; stop it."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "OTEL_SDK_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("w") as log:
        platform = Platform(
            [
                Component(
                    name="gateway",
                    argv=[sys.executable, "-m", "gateway"],
                    env=env,
                    health_http=f"{url}/healthz",
                )
            ],
            output=log,
        )
        try:
            platform.start(timeout=60)
            yield url
        finally:
            platform.stop(grace=5)


@pytest.fixture(scope="session")
def gateway_process() -> Callable[[dict[str, str], Path], AbstractContextManager[str]]:
    """`with gateway_process(settings, tmp_path) as url:` a running gateway."""
    return _gateway_process
