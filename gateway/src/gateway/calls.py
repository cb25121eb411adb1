"""One HTTP request -> one unary gRPC call -> one HTTP response.

A route with a per-address rate limit is counted first (gateway.ratelimit),
so a refused request costs the backend nothing. The call runs under the
backend's circuit breaker and the concurrency limit of the route's class
(cheap or expensive, gateway.resilience) with the route's budget as its gRPC
deadline.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from flask import Request, Response, g, request
from google.protobuf import message
from switchyard_kit import (
    CLIENT_ADDRESS_KEY,
    IDEMPOTENCY_KEY,
    REQUEST_ID_KEY,
    SESSION_ID_KEY,
    USER_AGENT_KEY,
    USER_ID_KEY,
    Backend,
    user_id_var,
)
from switchyard_kit.idempotency import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE

from gateway import metrics
from gateway.problems import ApiError, FieldError, from_rpc_error
from gateway.ratelimit import RateLimits
from gateway.resilience import guard_for
from gateway.tokens import TokenVerifier
from gateway.transcoding import HttpRoute, build_request, render_response
from gateway.transcoding.render import encode

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SANE_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_USER_AGENT_LIMIT = 256
_JSON_TYPES = ("application/json", "application/problem+json")


def request_id_from(incoming: Request) -> str:
    """The client's X-Request-Id when it is short and plain, else a new one."""
    given = incoming.headers.get("X-Request-Id", "")
    return given if _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex


def _metadata(
    route: HttpRoute, user_id: str | None, session_id: str | None = None
) -> list[tuple[str, str]]:
    metadata = [(REQUEST_ID_KEY, str(g.request_id))]
    if user_id:
        metadata.append((USER_ID_KEY, user_id))
    if session_id:
        metadata.append((SESSION_ID_KEY, session_id))
    if request.remote_addr:
        metadata.append((CLIENT_ADDRESS_KEY, request.remote_addr))
    agent = request.headers.get("User-Agent", "")
    printable = "".join(c for c in agent[:_USER_AGENT_LIMIT] if " " <= c <= "~")
    if printable:
        metadata.append((USER_AGENT_KEY, printable))
    if route.options.idempotency_key_required:
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            raise ApiError(400, "this route needs an Idempotency-Key header")
        if not _SANE_IDEMPOTENCY_KEY.fullmatch(key):
            raise ApiError(400, f"the Idempotency-Key header must be {IDEMPOTENCY_KEY_RULE}")
        metadata.append((IDEMPOTENCY_KEY, key))
    return metadata


def _body() -> bytes:
    data = request.get_data(cache=False)
    if data.strip():
        mimetype = request.mimetype
        if mimetype and not (mimetype in _JSON_TYPES or mimetype.endswith("+json")):
            raise ApiError(415, "the request body must be JSON (Content-Type: application/json)")
    return data


def rpc_problem(error: grpc.RpcError, backend: str, body_field: str = "") -> ApiError:
    """The problem a failed call becomes; shed load (429) always says when to retry.

    When the route's body is one field of the request (`body: "profile"`),
    the client's JSON is that field: its violations are named as sent
    ("profile.bio" -> "bio").
    """
    problem = from_rpc_error(error, backend)
    if body_field not in ("", "*"):
        prefix = body_field + "."
        problem.errors = [
            FieldError(item.field.removeprefix(prefix), item.description) for item in problem.errors
        ]
    if problem.status in (429, 503) and "Retry-After" not in problem.headers:
        problem.headers["Retry-After"] = "1"
    return problem


def make_view(
    route: HttpRoute,
    backend: Backend,
    verifier: Callable[[], TokenVerifier],
    default_timeout_ms: int,
    rate_limits: RateLimits | None = None,
) -> Callable[..., Response]:
    """The Flask view of `route`: limit, check the caller, build the request, call, answer."""
    timeout = route.timeout_seconds(default_timeout_ms)
    guard = guard_for(backend, expensive=route.options.expensive)
    method_name = route.method.name
    limit = route.options.rate_limit

    def view(**view_args: Any) -> Response:
        if limit and rate_limits is not None:
            # remote_addr is the client address (gateway.client_address).
            rate_limits.check(limit, request.remote_addr or "")
        user_id: str | None = None
        session_id: str | None = None
        if not route.options.public:
            verified = verifier().verify_header(request.headers.get("Authorization"))
            user_id, session_id = verified.user_id, verified.session_id
            user_id_var.set(user_id)
        metadata = _metadata(route, user_id, session_id)
        body = _body() if route.body else b""
        rpc_request = build_request(route, route.path.bindings(view_args), request.args, body)
        call = backend.unary_call(route.method)
        try:
            rpc_response: message.Message = guard.call(
                lambda: call(rpc_request, timeout=timeout, metadata=tuple(metadata)),
                method_name,
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
            metrics.observe_call(backend.name, method_name, code.name)
            raise rpc_problem(error, backend.name, route.body) from None
        metrics.observe_call(backend.name, method_name, "OK")
        status = route.success_status
        if status == 204:
            return Response(status=204)
        payload = render_response(route, rpc_response)
        return Response(encode(payload), status=status, mimetype="application/json")

    view.__name__ = route.endpoint
    return view
