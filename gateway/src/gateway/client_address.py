"""The client address: the TCP peer, or what trusted proxies say it was.

Everything that keys on the client (the per-address rate limits, the address
sent to auth in `x-switchyard-client-address` for its login throttling and
session list) reads `request.remote_addr`, which this middleware sets.

X-Forwarded-For is a request header: any client can send one. So it is
believed only as far as the deployment says proxies append to it: with
GATEWAY_TRUSTED_PROXY_HOPS=0 (the default, a gateway clients reach directly)
it is ignored; with N, werkzeug's ProxyFix takes the Nth address from the
right, the one the outermost trusted proxy saw. GATEWAY_TRUSTED_PROXY_CIDRS
narrows this to requests whose TCP peer is one of those proxies, so a client
that reaches the gateway around the ingress cannot choose its address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR from X-Forwarded-For, only behind trusted proxies.

    Example::

        app.wsgi_app = TrustedProxies(app.wsgi_app, hops=1)   # behind one ingress
    """

    def __init__(self, app: WSGIApplication, hops: int, networks: Sequence[Network] = ()) -> None:
        self.app = app
        self.networks = tuple(networks)
        # A list of proxies with no hop count means one proxy in front.
        self.hops = hops or (1 if self.networks else 0)
        self._fixed = ProxyFix(app, x_for=self.hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.hops and self._from_trusted_peer(environ.get("REMOTE_ADDR", "")):
            return self._fixed(environ, start_response)
        return self.app(environ, start_response)

    def _from_trusted_peer(self, peer: str) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


__all__ = ["TrustedProxies"]
