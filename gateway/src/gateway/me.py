"""`GET /v1/me`: the caller's profile, wallet and recommendations in one answer.

The three parts are fetched in parallel within one deadline
(GATEWAY_ME_TIMEOUT_MS, default 1500 ms): each call's gRPC deadline is what is
left of it, capped by that RPC's own route timeout. A part that fails, times
out or whose backend is shed by its circuit breaker is answered as
``{"status": "unavailable"}``; the others are still returned with 200. Only a
missing or bad token fails the request (401).

Each part is rendered exactly as its own route renders it (`GET
/v1/profiles/me`, `GET /v1/wallet`, `GET /v1/recommendations`), so clients
reuse their types. The parts are a declarative table (`PARTS`); the OpenAPI
entry is built from the same table and the same descriptors.

The three calls are issued as gRPC futures from the request's own thread
(each admitted first by its backend's breaker and concurrency limit,
gateway.resilience), so they are in flight together without a thread each:
gRPC completes them in its own threads, and the request thread renders the
answers as they arrive. (They used to run on a thread pool per worker: three
thread hand-offs per request, measured in bench/CAPACITY.md.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from flask import Flask, Response, g, request
from google.protobuf import message, message_factory
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from switchyard_kit import (
    CLIENT_ADDRESS_KEY,
    REQUEST_ID_KEY,
    SESSION_ID_KEY,
    USER_ID_KEY,
    Backend,
    load_settings,
    user_id_var,
)

from gateway import metrics
from gateway.openapi import SchemaBuilder
from gateway.problems import ApiError
from gateway.resilience import guard_for
from gateway.tokens import TokenVerifier
from gateway.transcoding import HttpRoute, render_response
from gateway.transcoding.render import encode

logger = logging.getLogger("switchyard.gateway")

ME_PATH = "/v1/me"
UNAVAILABLE: Mapping[str, str] = {"status": "unavailable"}


class MeSettings(BaseSettings):
    """GATEWAY_ME_TIMEOUT_MS: the whole request's budget."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_ME_", extra="ignore", frozen=True)

    timeout_ms: int = Field(default=1500, ge=10, le=30_000)


@dataclass(frozen=True)
class MePart:
    """One part of /v1/me: its key in the answer and the RPC (by full name) that fetches it."""

    key: str
    rpc: str


PARTS: tuple[MePart, ...] = (
    MePart("profile", "switchyard.profile.v1.ProfileService.GetMyProfile"),
    MePart("wallet", "switchyard.payment.v1.PaymentService.GetWallet"),
    MePart(
        "recommendations", "switchyard.recommendation.v1.RecommendationService.GetRecommendations"
    ),
)


@dataclass(frozen=True)
class _Bound:
    """A part with the route and backend it is fetched from."""

    part: MePart
    route: HttpRoute
    backend: Backend
    # Every part is fetched with an empty request (the caller is in metadata),
    # built once and only ever serialized.
    request: message.Message


def _bind(routes: Sequence[HttpRoute], backends: Mapping[str, Backend]) -> list[_Bound]:
    by_rpc = {route.method.full_name: route for route in routes if not route.binding_index}
    bound = []
    for part in PARTS:
        route = by_rpc.get(part.rpc)
        if route is not None and route.backend in backends:
            request = message_factory.GetMessageClass(route.method.input_type)()
            bound.append(_Bound(part, route, backends[route.backend], request))
    return bound


@dataclass(frozen=True)
class _InFlight:
    """A part's call, issued as a future."""

    bound: _Bound
    future: grpc.Future[Any]


def _start(
    bound: _Bound, deadline: float, metadata: tuple[tuple[str, str], ...], default_ms: int
) -> _InFlight:
    """Admit and issue one part's call; ApiError 503 when its backend refuses."""
    route = bound.route
    guard = guard_for(bound.backend)
    ticket = guard.admit()
    # Counted after the admission, which may have waited for a slot.
    timeout = min(deadline - time.monotonic(), route.timeout_seconds(default_ms))
    if timeout <= 0:
        # The wait for a slot took the whole budget: the backend is saturated.
        guard.complete(ticket, grpc.StatusCode.DEADLINE_EXCEEDED)
        raise TimeoutError("no time left")
    call = bound.backend.unary_call(route.method)
    try:
        future = call.future(bound.request, timeout=timeout, metadata=metadata)
    except BaseException:
        guard.complete(ticket, grpc.StatusCode.UNKNOWN)
        raise
    # On gRPC's thread: the outcome for the breaker, the latency for the limit.
    future.add_done_callback(lambda done: guard.complete(ticket, _code_of(done)))
    return _InFlight(bound, future)


def _code_of(done: grpc.Future[Any]) -> grpc.StatusCode:
    # A call's future is a grpc.Call too (its status), whatever interceptors wrap it.
    return done.code() if isinstance(done, grpc.Call) else grpc.StatusCode.UNKNOWN


def _answer(call: _InFlight, deadline: float) -> Any:
    """The part's rendered answer, once its call ends (its deadline bounds the wait)."""
    bound = call.bound
    # The call carries the deadline itself; the margin only covers scheduling.
    wait = max(0.0, deadline - time.monotonic()) + 0.05
    try:
        response: message.Message = call.future.result(timeout=wait)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        metrics.observe_call(bound.backend.name, bound.route.method.name, code.name)
        raise
    metrics.observe_call(bound.backend.name, bound.route.method.name, "OK")
    return render_response(bound.route, response)


def _failure(error: BaseException) -> str:
    if isinstance(error, grpc.Call):
        return str(error.code().name)
    if isinstance(error, ApiError):
        return error.code
    return type(error).__name__


def register_me(
    app: Flask,
    routes: Sequence[HttpRoute],
    backends: Mapping[str, Backend],
    verifier: Callable[[], TokenVerifier],
    default_timeout_ms: int,
    *,
    settings: MeSettings | None = None,
) -> list[str]:
    """Add GET /v1/me to `app`; returns the part keys it serves (for the spec)."""
    me_settings = settings or load_settings(MeSettings)
    bound = _bind(routes, backends)
    budget = me_settings.timeout_ms / 1000.0

    def me() -> Response:
        verified = verifier().verify_header(request.headers.get("Authorization"))
        user_id_var.set(verified.user_id)
        deadline = time.monotonic() + budget
        metadata = [(REQUEST_ID_KEY, str(g.request_id)), (USER_ID_KEY, verified.user_id)]
        if verified.session_id:
            metadata.append((SESSION_ID_KEY, verified.session_id))
        if request.remote_addr:
            metadata.append((CLIENT_ADDRESS_KEY, request.remote_addr))
        frozen = tuple(metadata)
        calls: dict[str, _InFlight | Exception] = {}
        for part in bound:
            try:
                calls[part.part.key] = _start(part, deadline, frozen, default_timeout_ms)
            except (grpc.RpcError, ApiError, TimeoutError) as refused:
                calls[part.part.key] = refused
        body: dict[str, Any] = {"user_id": verified.user_id}
        for key, call in calls.items():
            if isinstance(call, _InFlight):
                try:
                    body[key] = _answer(call, deadline)
                    continue
                except (grpc.RpcError, grpc.FutureTimeoutError) as failed:
                    call.future.cancel()
                    call_error: Exception = failed
            else:
                call_error = call
            logger.warning(
                "me: part unavailable", extra={"part": key, "error": _failure(call_error)}
            )
            body[key] = dict(UNAVAILABLE)
        return Response(encode(body), status=200, mimetype="application/json")

    app.add_url_rule(ME_PATH, endpoint="switchyard.gateway.me", view_func=me, methods=["GET"])
    return [part.part.key for part in bound]


def add_me_to_spec(
    spec: dict[str, Any], routes: Sequence[HttpRoute], parts: Sequence[str] | None = None
) -> None:
    """Document GET /v1/me in `spec` (built from the same descriptors as the parts)."""
    schemas = SchemaBuilder()
    by_rpc = {route.method.full_name: route for route in routes if not route.binding_index}
    properties: dict[str, Any] = {"user_id": {"type": "string"}}
    for part in PARTS:
        route = by_rpc.get(part.rpc)
        if route is None or (parts is not None and part.key not in parts):
            continue
        output = route.method.output_type
        schema = (
            schemas.field(output.fields_by_name[route.response_body])
            if route.response_body
            else schemas.message(output)
        )
        properties[part.key] = {"oneOf": [schema, {"$ref": "#/components/schemas/Unavailable"}]}
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in schemas.schemas.items():
        components.setdefault(name, schema)
    components["Unavailable"] = {
        "type": "object",
        "description": "This part could not be fetched in time; the rest of the answer stands.",
        "required": ["status"],
        "properties": {"status": {"const": "unavailable"}},
        "additionalProperties": False,
    }
    error = {"$ref": "#/components/responses/Problem401"}
    spec.setdefault("paths", {})[ME_PATH] = {
        "get": {
            "operationId": "Gateway_GetMe",
            "summary": "Profile, wallet and recommendations of the caller",
            "description": __doc__.split("\n\n")[1] if __doc__ else "",
            "tags": ["Gateway"],
            "responses": {
                "200": {
                    "description": "Every part, each either its resource or "
                    '{"status": "unavailable"}.',
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["user_id", *[p for p in properties if p != "user_id"]],
                                "properties": properties,
                            }
                        }
                    },
                },
                "401": error,
                "default": {"$ref": "#/components/responses/ProblemDefault"},
            },
            "security": [{"bearerAuth": []}],
        }
    }
    spec["paths"] = dict(sorted(spec["paths"].items()))
