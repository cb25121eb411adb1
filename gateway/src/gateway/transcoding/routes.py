"""Routes read from the descriptors: one HttpRoute per google.api.http binding."""

from __future__ import annotations

from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor
from switchyard.api.v1 import annotations_pb2 as route_annotations

from gateway.transcoding.path_template import PathTemplate, TemplateError

_EMPTY = "google.protobuf.Empty"


@dataclass(frozen=True)
class RouteOptions:
    """The `(switchyard.api.v1.route)` option of an RPC, with the gateway's defaults."""

    public: bool = False
    success_status: int = 0
    timeout_ms: int = 0
    idempotency_key_required: bool = False
    # The name of the route's per-client-address rate limit ("" for none).
    rate_limit: str = ""
    # Calls run under the backend's concurrency limit for expensive work (gateway.resilience).
    expensive: bool = False


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP binding of one RPC of one backend."""

    backend: str
    method: descriptor.MethodDescriptor
    http_method: str
    path: PathTemplate
    body: str
    response_body: str
    options: RouteOptions
    binding_index: int = 0

    @property
    def rpc_path(self) -> str:
        """The gRPC method path: /switchyard.auth.v1.AuthService/Login."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def endpoint(self) -> str:
        """A unique Flask endpoint name."""
        suffix = f"#{self.binding_index}" if self.binding_index else ""
        return f"{self.method.full_name}{suffix}"

    @property
    def operation_id(self) -> str:
        suffix = str(self.binding_index) if self.binding_index else ""
        return f"{self.method.containing_service.name}_{self.method.name}{suffix}"

    @property
    def empty_response(self) -> bool:
        return self.method.output_type.full_name == _EMPTY and not self.response_body

    @property
    def success_status(self) -> int:
        if self.options.success_status:
            return self.options.success_status
        return 204 if self.empty_response else 200

    def timeout_seconds(self, default_ms: int) -> float:
        return (self.options.timeout_ms or default_ms) / 1000.0


def _verb_and_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise TemplateError("an HttpRule without a pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), str(getattr(rule, kind))


def _check_field(message: descriptor.Descriptor, field_path: str, where: str) -> None:
    current: descriptor.Descriptor | None = message
    for name in field_path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            raise TemplateError(f"{where}: {message.full_name} has no field {field_path!r}")
        current = field.message_type


def route_options(method: descriptor.MethodDescriptor) -> RouteOptions:
    options = method.GetOptions()
    if not options.HasExtension(route_annotations.route):
        return RouteOptions()
    value = options.Extensions[route_annotations.route]
    return RouteOptions(
        public=value.public,
        success_status=value.success_status,
        timeout_ms=value.timeout_ms,
        idempotency_key_required=value.idempotency_key_required,
        rate_limit=value.rate_limit,
        expensive=value.expensive,
    )


def discover_routes(backend: str, service: descriptor.ServiceDescriptor) -> list[HttpRoute]:
    """Every HTTP binding (including additional_bindings) of `service`'s RPCs.

    RPCs without a google.api.http option are internal and get no route.
    A malformed rule raises TemplateError naming the RPC, at start.
    """
    routes: list[HttpRoute] = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        if method.client_streaming or method.server_streaming:
            raise TemplateError(f"{method.full_name}: streaming RPCs cannot be transcoded")
        top = options.Extensions[annotations_pb2.http]
        gateway_options = route_options(method)
        for index, rule in enumerate([top, *top.additional_bindings]):
            http_method, path = _verb_and_path(rule)
            where = method.full_name
            template = PathTemplate.parse(path)
            for field_path in template.fields.values():
                _check_field(method.input_type, field_path, where)
            if rule.body and rule.body != "*":
                _check_field(method.input_type, rule.body, where)
            if rule.response_body:
                _check_field(method.output_type, rule.response_body, where)
            routes.append(
                HttpRoute(
                    backend=backend,
                    method=method,
                    http_method=http_method,
                    path=template,
                    body=rule.body,
                    response_body=rule.response_body,
                    options=gateway_options,
                    binding_index=index,
                )
            )
    return routes
