"""Slow clients under the real gunicorn: connections that never finish their
headers hold no worker thread and are closed after the header deadline.

The gateway runs as `python -m gateway` (2 workers x 8 threads, the
defaults) with a 2 s header deadline in front of an in-process AuthService
double. 64 connections send a request line and part of a header, then
nothing; meanwhile /healthz and an API route must answer as usual. Bounded:
64 sockets, each wait capped at a few seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from switchyard.auth.v1 import auth_pb2, auth_pb2_grpc

SLOW_CLIENTS = 64
HEADER_TIMEOUT_SECONDS = 2.0
MAX_HEADER_BYTES = 4096
# Generous: an idle gateway answers in milliseconds; a starved one never does.
ANSWER_WITHIN_SECONDS = 5.0
SLOW_START = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "


class Auth(auth_pb2_grpc.AuthServiceServicer):
    def GetJwks(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return auth_pb2.GetJwksResponse()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    gateway_process: Callable[[dict[str, str], Path], AbstractContextManager[str]],
) -> Iterator[tuple[str, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(Auth(), server)
    auth_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    settings = {
        "GATEWAY_WORKERS": "2",
        "GATEWAY_THREADS": "8",
        "GATEWAY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
        "GATEWAY_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "AUTH_TARGET": f"127.0.0.1:{auth_port}",
    }
    try:
        with gateway_process(settings, tmp_path_factory.mktemp("slow-clients")) as url:
            yield url, int(url.rsplit(":", 1)[1])
    finally:
        server.stop(0)


def open_slow(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(SLOW_START)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    with httpx.Client(timeout=ANSWER_WITHIN_SECONDS) as client:
        status = client.get(url).status_code
    return status, time.monotonic() - started


@pytest.mark.e2e
def test_slow_clients_hold_no_thread_and_are_closed_after_the_deadline(
    gateway: tuple[str, int],
) -> None:
    url, port = gateway
    slow = open_slow(port, SLOW_CLIENTS)
    try:
        time.sleep(0.5)  # every slow connection accepted and waiting
        for path in ("/healthz", "/v1/auth/jwks", "/readyz"):
            status, seconds = timed_get(url + path)
            print(f"{path}: {status} in {seconds * 1000:.0f} ms with {SLOW_CLIENTS} slow clients")
            assert status == 200, path
            assert seconds < ANSWER_WITHIN_SECONDS, (path, seconds)
        # Closed after the header deadline: the first check waits it out, the rest are due.
        deadline_passes = HEADER_TIMEOUT_SECONDS + 3.0
        assert all(closed_by_server(sock, deadline_passes) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.e2e
def test_headers_in_slow_pieces_within_the_deadline_are_served(gateway: tuple[str, int]) -> None:
    _, port = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for piece in (b"GET /healthz HTTP/1.1\r\nHo", b"st: x\r\nX-A: 1\r", b"\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.2)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        # Kept alive: the next request's headers are awaited the same way,
        # and a request pipelined behind it is served too.
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
        time.sleep(0.2)
        sock.sendall(b"st: x\r\nConnection: close\r\n\r\n")
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk
        assert answers.count(b"HTTP/1.1 200") == 2, answers


@pytest.mark.e2e
def test_headers_over_the_cap_are_refused(gateway: tuple[str, int]) -> None:
    url, port = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEADER_BYTES)
        assert closed_by_server(sock, 5.0)
    assert httpx.get(url + "/healthz", timeout=ANSWER_WITHIN_SECONDS).status_code == 200
