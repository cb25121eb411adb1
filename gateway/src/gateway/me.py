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

All but the last call run on a thread pool made on first use in each
(forked) gunicorn worker, never at import time (GATEWAY_ME_THREADS per
worker); the request's own thread makes the last one meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
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
    """GATEWAY_ME_TIMEOUT_MS (the whole request's budget), GATEWAY_ME_THREADS (per worker)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_ME_", extra="ignore", frozen=True)

    timeout_ms: int = Field(default=1500, ge=10, le=30_000)
    threads: int = Field(default=24, ge=1, le=256)


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


class LazyPool:
    """A thread pool per process, made on first use (after gunicorn forks)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: futures.ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> futures.ThreadPoolExecutor:
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            with self._lock:
                if self._pool is None or self._pid != pid:
                    self._pool = futures.ThreadPoolExecutor(
                        max_workers=self.threads, thread_name_prefix="me-part"
                    )
                    self._pid = pid
        return self._pool


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


def _fetch(
    bound: _Bound, deadline: float, metadata: tuple[tuple[str, str], ...], default_ms: int
) -> Any:
    route = bound.route
    remaining = deadline - time.monotonic()
    timeout = min(remaining, route.timeout_seconds(default_ms))
    if timeout <= 0:
        raise TimeoutError("no time left")
    call = bound.backend.unary_call(route.method)
    try:
        response: message.Message = guard_for(bound.backend).call(
            lambda: call(bound.request, timeout=timeout, metadata=metadata), route.method.name
        )
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        metrics.observe_call(bound.backend.name, route.method.name, code.name)
        raise
    metrics.observe_call(bound.backend.name, route.method.name, "OK")
    return render_response(route, response)


def _fetched(
    bound: _Bound, deadline: float, metadata: tuple[tuple[str, str], ...], default_ms: int
) -> futures.Future[Any]:
    """`_fetch` on this thread, its outcome as a done future (like the pool's)."""
    done: futures.Future[Any] = futures.Future()
    try:
        done.set_result(_fetch(bound, deadline, metadata, default_ms))
    except Exception as error:  # a part's failure is its outcome, as in the pool
        done.set_exception(error)
    return done


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
    pool = LazyPool(me_settings.threads)
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
        executor = pool.get()
        pending = {
            part.part.key: executor.submit(_fetch, part, deadline, frozen, default_timeout_ms)
            for part in bound[:-1]
        }
        if bound:
            # The request's own thread fetches the last part instead of waiting
            # idle for the pool: one thread hand-off less per request.
            last = bound[-1]
            pending[last.part.key] = _fetched(last, deadline, frozen, default_timeout_ms)
        # The calls carry the deadline themselves; the margin only covers scheduling.
        futures.wait(pending.values(), timeout=max(0.0, deadline - time.monotonic()) + 0.05)
        body: dict[str, Any] = {"user_id": verified.user_id}
        for key, future in pending.items():
            if future.done() and future.exception() is None:
                body[key] = future.result()
                continue
            error = future.exception() if future.done() else TimeoutError("deadline")
            logger.warning(
                "me: part unavailable",
                extra={"part": key, "error": _failure(error) if error else "unknown"},
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
