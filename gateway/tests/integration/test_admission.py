"""Admission control under the real gunicorn: requests that waited too long for
the worker's only thread are shed as fast 503s, operational paths never are.

The gateway runs as `python -m gateway` (1 worker, 1 thread, a 100 ms limit)
in front of an in-process AuthService double whose Login holds the thread
until the test releases it. Requests sent meanwhile queue for that thread,
so when it is released they have waited far longer than the limit: the
outcome depends on the order of events, not on timings.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from switchyard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchyard_dev.ports import free_port

USER_ID = "7d0c7a4e-9a43-4f0c-9d7e-1e1c4f5a6b7c"
LIMIT_MS = 100
# Far above the limit, and long enough for the queued requests to be accepted
# by the worker's main loop even on a busy machine.
QUEUED_FOR_SECONDS = 1.0
LOGIN = {"email": "ada@example.com", "password": "correct horse"}


class HeldAuth(auth_pb2_grpc.AuthServiceServicer):
    """Login blocks while `hold` is set, so the gateway's one thread stays busy."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.logins = 0
        self._lock = threading.Lock()

    def Login(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        with self._lock:
            self.logins += 1
        if self.hold.is_set():
            self.entered.set()
            self.release.wait(timeout=10)
        return auth_pb2.LoginResponse(
            tokens=auth_pb2.Tokens(user_id=USER_ID, access_token="a", token_type="Bearer")
        )


@pytest.fixture
def auth() -> Iterator[tuple[HeldAuth, str]]:
    double = HeldAuth()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(double, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield double, f"127.0.0.1:{port}"
    double.release.set()
    server.stop(0)


@pytest.fixture
def gateway(
    auth: tuple[HeldAuth, str],
    tmp_path: Path,
    gateway_process: Callable[[dict[str, str], Path], AbstractContextManager[str]],
) -> Iterator[str]:
    metrics_port = free_port()
    settings = {
        "GATEWAY_WORKERS": "1",
        "GATEWAY_THREADS": "1",
        "GATEWAY_MAX_QUEUE_WAIT_MS": str(LIMIT_MS),
        "GATEWAY_METRICS_PORT": str(metrics_port),
        "AUTH_TARGET": auth[1],
    }
    with gateway_process(settings, tmp_path) as url:
        METRICS_URLS[url] = f"http://127.0.0.1:{metrics_port}"
        yield url


# The private metrics address of each running gateway, by its public URL.
METRICS_URLS: dict[str, str] = {}


def shed_total(url: str) -> float:
    text = httpx.get(f"{METRICS_URLS[url]}/metrics", timeout=10).text
    match = re.search(r"^gateway_requests_shed_total (\S+)$", text, re.MULTILINE)
    assert match is not None, text
    return float(match.group(1))


def send(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    # One connection per request, as separate clients would.
    with httpx.Client(base_url=url, timeout=15) as client:
        return client.request(method, path, **kwargs)


@pytest.mark.e2e
def test_requests_queued_too_long_are_shed_but_probes_are_not(
    gateway: str, auth: tuple[HeldAuth, str]
) -> None:
    double, _ = auth
    assert send(gateway, "POST", "/v1/auth/login", json=LOGIN).status_code == 200
    double.hold.set()
    with futures.ThreadPoolExecutor(max_workers=12) as pool:
        first = pool.submit(send, gateway, "POST", "/v1/auth/login", json=LOGIN)
        assert double.entered.wait(timeout=15), "the first login never reached the backend"
        # The worker's only thread is now held: everything below queues behind it.
        queued = [
            pool.submit(
                send,
                gateway,
                "POST",
                "/v1/auth/login",
                json=LOGIN,
                headers={"X-Request-Id": f"q{n}"},
            )
            for n in range(6)
        ]
        probes = [
            pool.submit(send, gateway, "GET", path) for path in ("/healthz", "/readyz", "/healthz/")
        ]
        threading.Event().wait(QUEUED_FOR_SECONDS)
        assert not any(f.done() for f in [*queued, *probes])
        double.hold.clear()
        double.release.set()

        assert first.result().status_code == 200
        for n, future in enumerate(queued):
            response = future.result()
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.headers["Retry-After"] == "1"
            assert response.headers["X-Request-Id"] == f"q{n}"
            body = response.json()
            assert body["status"] == 503
            assert body["code"] == "UNAVAILABLE"
            assert body["type"].endswith("/unavailable")
            assert body["title"] == "Service Unavailable"
            assert body["request_id"] == f"q{n}"
            assert "overloaded" in body["detail"]
        for future in probes:
            assert future.result().status_code == 200

    # Shed requests never reached the backend: only the two admitted logins did.
    assert double.logins == 2
    assert shed_total(gateway) == 6
    # Shedding is not sticky: with the queue empty again, requests are served.
    assert send(gateway, "POST", "/v1/auth/login", json=LOGIN).status_code == 200
    assert double.logins == 3
