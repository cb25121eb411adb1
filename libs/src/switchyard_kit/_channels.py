"""gRPC client channels: one per backend per process, created on first use.

Channels are never created at import time: under gunicorn a channel made
before the fork would be shared by every worker and break. The retry policy
comes from the proto itself: only methods marked `idempotency_level =
NO_SIDE_EFFECTS | IDEMPOTENT` are retried, only on UNAVAILABLE and CANCELLED.
A server that stops (SIGTERM, after its grace period's pause) cancels the
calls that reached it but no worker thread had taken yet: CANCELLED then
means "not done, or done and safe to repeat" for these methods.

Every channel carries two interceptors: OpenTelemetry's (a client span, and
the W3C `traceparent` in the call's metadata; left out when
`OTEL_SDK_DISABLED` is true) and the deadline clamp (a call made while
serving an RPC never outlives that RPC's deadline, whatever timeout the
caller passed).

No client-side health checking: its Watch stream would hold one of the
server's `maximum_concurrent_rpcs` per client connection for good. Draining
servers are left through the readiness probe (endpoints) and GOAWAY.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor, descriptor_pb2, message_factory
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

from switchyard_kit._errors import DomainError
from switchyard_kit._telemetry import tracing_enabled

# The monotonic time by which the RPC being served must be answered (set by
# the server interceptor for the handler's thread); None outside an RPC.
inbound_deadline_var: ContextVar[float | None] = ContextVar("inbound_deadline", default=None)
# Below this, a call is not worth starting: it fails at once with DEADLINE_EXCEEDED.
_MIN_TIMEOUT_SECONDS = 0.001

if TYPE_CHECKING:
    _UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor[Any, Any]
else:
    _UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor

_RETRIED_LEVELS = (
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
)

CLIENT_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
    # Reconnect quickly after a backend restarts instead of backing off for minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def is_idempotent(method: descriptor.MethodDescriptor) -> bool:
    """True when the proto declares that repeating the call is safe."""
    return method.GetOptions().idempotency_level in _RETRIED_LEVELS


def service_config(service: descriptor.ServiceDescriptor) -> str:
    """The gRPC service config for one backend: round-robin over every address
    the name resolves to, retries for idempotent methods, and a retry budget."""
    idempotent = [
        {"service": service.full_name, "method": method.name}
        for method in service.methods
        if is_idempotent(method)
    ]
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        # Retries stop when more than 10% of recent calls failed (retry budget).
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        "methodConfig": [],
    }
    if idempotent:
        config["methodConfig"].append(
            {
                "name": idempotent,
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
                },
            }
        )
    return json.dumps(config)


def remaining_inbound_seconds() -> float | None:
    """Seconds left of the deadline of the RPC this thread is serving, if any."""
    deadline = inbound_deadline_var.get()
    return None if deadline is None else deadline - time.monotonic()


class _ClientCallDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, timeout: float | None) -> None:
        self.method = base.method
        self.timeout = timeout
        self.metadata = base.metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class DeadlineClampInterceptor(_UnaryUnaryClientInterceptor):
    """Shortens an outgoing call's timeout to what is left of the inbound deadline."""

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        remaining = remaining_inbound_seconds()
        if remaining is not None:
            remaining = max(_MIN_TIMEOUT_SECONDS, remaining)
            timeout = client_call_details.timeout
            if timeout is None or timeout > remaining:
                client_call_details = _ClientCallDetails(client_call_details, remaining)
        return continuation(client_call_details, request)


class Backend:
    """One backend service: its address and its channel in this process.

    Example::

        profiles = Backend("profile", "dns:///profile:50052", profile_pb2.DESCRIPTOR
                           .services_by_name["ProfileService"])
        stub = ProfileServiceStub(profiles.channel())
    """

    def __init__(self, name: str, target: str, service: descriptor.ServiceDescriptor) -> None:
        self.name = name
        self.target = target
        self.service = service
        self._channel: grpc.Channel | None = None
        self._pid = 0
        self._lock = threading.Lock()
        # One callable per method, reused for every call on the current channel.
        self._calls: dict[str, grpc.UnaryUnaryMultiCallable[Any, Any]] = {}

    def channel(self) -> grpc.Channel:
        """This process's channel, made on first use (and again after a fork)."""
        pid = os.getpid()
        if self._channel is None or self._pid != pid:
            with self._lock:
                if self._channel is None or self._pid != pid:
                    config = ("grpc.service_config", service_config(self.service))
                    options = [*CLIENT_OPTIONS, config]
                    raw = grpc.insecure_channel(self.target, options=options)
                    channel = grpc.intercept_channel(raw, DeadlineClampInterceptor())
                    if tracing_enabled():
                        channel = intercept_channel(channel, client_interceptor())  # type: ignore[no-untyped-call]
                    self._channel = channel
                    self._pid = pid
                    self._calls = {}
        return self._channel

    def unary_call(
        self, method: descriptor.MethodDescriptor
    ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
        """The callable of one unary method of this backend, made once per channel.

        Example::

            call = profiles.unary_call(GetMyProfile_descriptor)
            response = call(request, timeout=2.0, metadata=metadata)
        """
        channel = self.channel()
        path = f"/{method.containing_service.full_name}/{method.name}"
        call = self._calls.get(path)
        if call is None:
            call = channel.unary_unary(
                path,
                request_serializer=message_factory.GetMessageClass(
                    method.input_type
                ).SerializeToString,
                response_deserializer=message_factory.GetMessageClass(
                    method.output_type
                ).FromString,
            )
            self._calls[path] = call
        return call

    def close(self) -> None:
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = None


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


def outgoing_timeout(context: grpc.ServicerContext | None, cap_seconds: float) -> float:
    """The timeout of a call made while serving `context`: what is left of the
    caller's deadline, never more than `cap_seconds`. Without a context, the
    deadline of the RPC this thread serves (if any) is used.

    Raises DeadlineExceeded when nothing is left, so no doomed call is made.
    """
    remaining = context.time_remaining() if context is not None else remaining_inbound_seconds()
    timeout = cap_seconds if remaining is None else min(cap_seconds, remaining)
    if timeout <= 0:
        raise DeadlineExceeded("the caller's deadline has passed")
    return timeout
