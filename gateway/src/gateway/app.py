"""The application factory: `create_app()` builds the gateway's Flask app.

Nothing connects at import or in the factory: each backend's gRPC channel is
opened on its first call in each (forked) worker, and the signing keys on the
first protected request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, request
from google.protobuf import json_format
from switchyard.auth.v1 import auth_pb2
from switchyard_kit import Backend, request_id_var, user_id_var
from werkzeug.exceptions import HTTPException

from gateway import metrics
from gateway.backends import build_backends
from gateway.body_limit import ChunkedBodyLimit
from gateway.calls import make_view, request_id_from
from gateway.client_address import TrustedProxies
from gateway.docs import docs_blueprint
from gateway.me import add_me_to_spec, register_me
from gateway.openapi import build_spec
from gateway.problems import ApiError, problem_response
from gateway.ratelimit import RateLimits
from gateway.revocation_wiring import build_revocation_check
from gateway.settings import GatewaySettings, load_gateway_settings
from gateway.tokens import JwksCache, TokenVerifier
from gateway.transcoding import HttpRoute, TemplateConverter, discover_routes

logger = logging.getLogger("switchyard.gateway")

EXTENSION = "switchyard_gateway"
AUTH_BACKEND = "auth"
_OPS_PATHS = ("/healthz", "/readyz")
# The limits a route's proto may name (rate_limit), each a GATEWAY_RATE_LIMIT_<NAME>.
RATE_LIMIT_NAMES = ("signup", "login", "refresh")


@dataclass
class GatewayState:
    """What the app holds per process: settings, backends, routes, readiness."""

    settings: GatewaySettings
    backends: dict[str, Backend]
    routes: list[HttpRoute]
    spec: dict[str, Any]
    verifier: TokenVerifier | None = None
    draining: threading.Event = field(default_factory=threading.Event)


def state_of(app: Flask) -> GatewayState:
    state: GatewayState = app.extensions[EXTENSION]
    return state


def mark_draining(app: Flask) -> None:
    """From now on /readyz answers 503 (called on SIGTERM)."""
    state_of(app).draining.set()


_AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]


def _jwks_fetcher(backend: Backend, timeout: float) -> Any:
    def fetch() -> list[dict[str, str]]:
        call = backend.unary_call(_AUTH_SERVICE.methods_by_name["GetJwks"])
        response: auth_pb2.GetJwksResponse = call(auth_pb2.GetJwksRequest(), timeout=timeout)
        return [
            json_format.MessageToDict(key, preserving_proto_field_name=True)
            for key in response.keys
        ]

    return fetch


def _make_verifier(settings: GatewaySettings, backends: dict[str, Backend]) -> TokenVerifier:
    auth = backends.get(AUTH_BACKEND)
    if auth is None:
        raise RuntimeError("protected routes need the auth backend (for its signing keys)")
    cache = JwksCache(
        _jwks_fetcher(auth, settings.jwks_fetch_timeout_seconds),
        ttl=settings.jwks_cache_ttl_seconds,
        min_interval=settings.jwks_refetch_min_interval_seconds,
    )
    return TokenVerifier(
        cache,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
        revocations=build_revocation_check(settings, auth),
    )


def create_app(
    settings: GatewaySettings | None = None,
    backends: Sequence[Backend] | None = None,
    verifier: TokenVerifier | None = None,
) -> Flask:
    """The gateway app: one route per google.api.http binding of each backend.

    Example::

        app = create_app()                       # settings from the environment
        app = create_app(settings, [Backend("profile", "127.0.0.1:6000", descriptor)])
    """
    settings = settings or load_gateway_settings()
    backend_list = list(backends) if backends is not None else build_backends(settings)
    by_name = {backend.name: backend for backend in backend_list}

    app = Flask("gateway")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Innermost first: chunked bodies over the limit are refused before Flask;
    # outermost, REMOTE_ADDR becomes the client address for all that follows.
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, settings.max_body_bytes)  # type: ignore[method-assign]
    app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
        app.wsgi_app, settings.trusted_proxy_hops, settings.trusted_networks
    )
    app.url_map.converters[TemplateConverter.name] = TemplateConverter
    app.url_map.strict_slashes = False

    routes = [
        route
        for backend in backend_list
        for route in discover_routes(backend.name, backend.service)
    ]
    for route in routes:
        # A limit name no setting exists for fails at start, naming the RPC.
        if route.options.rate_limit and route.options.rate_limit not in RATE_LIMIT_NAMES:
            raise RuntimeError(
                f"{route.method.full_name}: unknown rate_limit {route.options.rate_limit!r}"
                f" (known: {', '.join(RATE_LIMIT_NAMES)})"
            )
    rate_limits = RateLimits(
        {name: settings.rate_limit(name) for name in RATE_LIMIT_NAMES},
        settings.redis_url,
        settings.rate_limit_redis_timeout_seconds,
    )
    state = GatewayState(
        settings=settings,
        backends=by_name,
        routes=routes,
        spec=build_spec(routes),
        verifier=verifier,
    )
    app.extensions[EXTENSION] = state

    lock = threading.Lock()

    def get_verifier() -> TokenVerifier:
        if state.verifier is None:
            with lock:
                if state.verifier is None:
                    state.verifier = _make_verifier(settings, by_name)
        return state.verifier

    for route in routes:
        app.add_url_rule(
            route.path.rule,
            endpoint=route.endpoint,
            view_func=make_view(
                route,
                by_name[route.backend],
                get_verifier,
                settings.default_timeout_ms,
                rate_limits,
            ),
            methods=[route.http_method],
        )
    # GET /v1/me: profile, wallet and recommendations in parallel (gateway.me).
    me_parts = register_me(app, routes, by_name, get_verifier, settings.default_timeout_ms)
    add_me_to_spec(state.spec, routes, me_parts)
    _register_operations(app, state)
    app.register_blueprint(docs_blueprint())
    _register_hooks(app)
    return app


def _register_operations(app: Flask, state: GatewayState) -> None:
    spec_body = json.dumps(state.spec)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        # Ready unless draining: one backend's outage degrades its own routes
        # (503 there) but must not take the whole gateway out of the pool.
        if state.draining.is_set():
            raise ApiError(503, "the gateway is shutting down")
        return Response('{"status":"ready"}', mimetype="application/json")

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(spec_body, mimetype="application/json")


def _register_hooks(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request)
        request_id_var.set(g.request_id)
        user_id_var.set(None)

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-Id"] = request_id
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        rule = request.url_rule.rule if request.url_rule is not None else metrics.UNMATCHED_ROUTE
        started = g.get("started")
        if started is not None and rule not in _OPS_PATHS:
            metrics.observe(
                request.method, rule, response.status_code, time.perf_counter() - started
            )
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        if error.status >= 500:
            logger.warning(
                "request failed",
                # The detail tells a saturated backend from an open breaker or a failed call.
                extra={
                    "status": error.status,
                    "code": error.code,
                    "detail": error.detail,
                    "path": request.path,
                },
            )
        return problem_response(error, g.get("request_id"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        detail = {
            404: f"no route matches {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the request body is too large",
        }.get(status, error.description or "")
        problem = ApiError(status, detail)
        response = problem_response(problem, g.get("request_id"))
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("unhandled error", extra={"path": request.path})
        problem = ApiError(500, "the request failed because of an internal error")
        return problem_response(problem, g.get("request_id"))


__all__ = ["GatewayState", "create_app", "mark_draining", "state_of"]
