"""Ports for the servers tests start: never one the kernel hands to a port-0
bind, never one another xdist worker picks, never the same one twice."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import grpc
import pytest
from switchyard_dev import ports
from switchyard_dev.launcher import http_ok


def test_the_band_is_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    band = ports.band()
    assert band.start == ports.LOWEST_PORT
    assert band.stop <= ports._ephemeral_low()
    # What a port-0 bind (an in-process server of another test) is given:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert sock.getsockname()[1] not in band


def test_each_xdist_worker_has_a_band_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    bands = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        bands.append(set(ports.band()))
    assert all(len(band) > 1000 for band in bands)
    assert not bands[0] & bands[1]
    assert not bands[1] & bands[2]
    assert not bands[0] & bands[2]


def test_ports_are_free_distinct_and_not_handed_out_twice() -> None:
    first = ports.free_ports(["a", "b", "c"])
    second = [ports.free_port() for _ in range(20)]
    picked = [*first.values(), *second]
    assert len(set(picked)) == len(picked)
    assert all(port in ports.band() for port in picked)
    for port in picked:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_taken_meanwhile_is_skipped() -> None:
    with socket.socket() as taken:
        # The next port of the walk, taken by someone else before the pick.
        port = ports.free_port()
        taken.bind(("127.0.0.1", port + 1 if port + 1 in ports.band() else port))
        taken.listen()
        assert taken.getsockname()[1] not in {ports.free_port() for _ in range(3)}


@pytest.fixture
def grpc_server_port() -> Iterator[int]:
    server = grpc.server(thread_pool=None)  # type: ignore[arg-type]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def test_a_grpc_server_on_a_components_http_port_is_not_its_health(grpc_server_port: int) -> None:
    """Its HTTP/2 answer to an HTTP/1 probe is "not healthy", not a crash of the start."""
    assert http_ok(f"http://127.0.0.1:{grpc_server_port}/livez") is False


def test_an_http_server_answering_200_is_healthy() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert http_ok(f"http://127.0.0.1:{server.server_address[1]}/livez") is True
    finally:
        server.shutdown()
        server.server_close()


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return
