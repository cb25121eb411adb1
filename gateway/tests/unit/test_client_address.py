"""The client address: X-Forwarded-For only from trusted proxies (ProxyFix)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import pytest
from gateway.client_address import TrustedProxies
from werkzeug.test import Client
from werkzeug.wrappers import Response

FORGED = "203.0.113.66"


def remote_addr_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    return Response(environ["REMOTE_ADDR"])(environ, start_response)


def seen(app: TrustedProxies, peer: str, forwarded: str | None) -> str:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    response = Client(app).get("/", headers=headers, environ_base={"REMOTE_ADDR": peer})
    return response.get_data(as_text=True)


def test_off_by_default_a_forged_header_changes_nothing() -> None:
    app = TrustedProxies(remote_addr_app, hops=0)  # type: ignore[arg-type]
    assert seen(app, "192.0.2.10", FORGED) == "192.0.2.10"
    assert seen(app, "192.0.2.10", f"{FORGED}, 198.51.100.1") == "192.0.2.10"


def test_one_hop_takes_the_address_the_proxy_appended() -> None:
    app = TrustedProxies(remote_addr_app, hops=1)  # type: ignore[arg-type]
    # The client forged the first entry; the ingress appended what it saw.
    assert seen(app, "10.0.0.5", f"{FORGED}, 198.51.100.7") == "198.51.100.7"
    assert seen(app, "10.0.0.5", None) == "10.0.0.5"


def test_two_hops() -> None:
    app = TrustedProxies(remote_addr_app, hops=2)  # type: ignore[arg-type]
    assert seen(app, "10.0.0.5", f"{FORGED}, 198.51.100.7, 10.0.0.9") == "198.51.100.7"
    # Fewer entries than hops: not behind the proxies it expects, nothing believed.
    assert seen(app, "10.0.0.5", "198.51.100.7") == "10.0.0.5"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("10.1.2.3", "198.51.100.7"), ("192.0.2.10", "192.0.2.10"), ("not-an-ip", "not-an-ip")],
)
def test_only_peers_in_the_trusted_networks_are_believed(peer: str, expected: str) -> None:
    networks = [ipaddress.ip_network("10.0.0.0/8")]
    app = TrustedProxies(remote_addr_app, hops=0, networks=networks)  # type: ignore[arg-type]
    assert app.hops == 1
    assert seen(app, peer, "198.51.100.7") == expected
