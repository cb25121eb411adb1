"""OpenAPI 3.1 generated from the same descriptors the routes come from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import descriptor
from switchyard_kit.idempotency import IDEMPOTENCY_KEY_PATTERN

from gateway.openapi_examples import example_of
from gateway.openapi_examples import resolve as _resolve
from gateway.openapi_links import add_links
from gateway.openapi_rules import (
    behaviors,
    container_keywords,
    field_rules,
    item_rules,
    map_key_rules,
    must_be_sent,
    rules_kind,
    value_keywords,
)
from gateway.problems import GRPC_TO_HTTP, REASON_TO_HTTP, TITLES
from gateway.proto_comments import proto_comments
from gateway.transcoding import HttpRoute
from gateway.transcoding.json_values import FD, enum_of, is_map, is_repeated, message_of
from gateway.transcoding.messages import resolve_path

OPENAPI_VERSION = "3.1.0"
_FIELD_MASK = "google.protobuf.FieldMask"

_SCALARS: dict[int, dict[str, Any]] = {
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FD.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    FD.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    # The gateway writes 64-bit integers as JSON numbers (see int64_as_numbers).
    FD.TYPE_INT64: {"type": "integer", "format": "int64"},
    FD.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FD.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    FD.TYPE_UINT64: {"type": "integer", "format": "uint64", "minimum": 0},
    FD.TYPE_FIXED64: {"type": "integer", "format": "uint64", "minimum": 0},
    FD.TYPE_FLOAT: {"type": "number", "format": "float"},
    FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "int64"},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "uint64"},
    "google.protobuf.FloatValue": {"type": ["number", "null"], "format": "float"},
    "google.protobuf.DoubleValue": {"type": ["number", "null"], "format": "double"},
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; `code` is the gRPC status name.",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "examples": ["INVALID_ARGUMENT"]},
        "request_id": {"type": ["string", "null"]},
        "reason": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "description"],
                "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
            },
        },
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _zero(field: descriptor.FieldDescriptor) -> Any:
    """The JSON value of `field`'s zero value (what an absent field holds)."""
    if field.type == FD.TYPE_ENUM:
        zero = enum_of(field).values_by_number.get(0)
        return zero.name if zero is not None else 0
    if field.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return ""
    if field.type == FD.TYPE_BOOL:
        return False
    return 0


class SchemaBuilder:
    """JSON Schemas of messages and enums, collected under components/schemas.

    Responses and requests differ: a response object is open (a new field is
    not a breaking change) and lists as required the fields the gateway always
    prints (those without presence); a request object is closed (the gateway
    refuses unknown fields) and carries the field's `buf.validate` rules. A
    message used in a request body under another message (a line item, a
    profile) gets a request variant named `<full name>Input`.
    """

    def __init__(self, comments: Mapping[str, str] | None = None) -> None:
        self.schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
        self.comments: Mapping[str, str] = comments or {}
        # The number of fields that carry a rule (requests only), for the record.
        self.constrained: set[str] = set()

    def message(
        self,
        message: descriptor.Descriptor,
        exclude: Sequence[str] = (),
        *,
        request: bool = False,
    ) -> dict[str, Any]:
        """A $ref to `message`'s schema (or an inline one without `exclude`d fields)."""
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if exclude:
            return self._object(message, exclude, request=request)
        name = message.full_name
        if request and not name.endswith("Request"):
            name += "Input"
        if name not in self.schemas:
            self.schemas[name] = {}  # a placeholder stops recursion
            self.schemas[name] = self._object(message, (), request=request)
            # Titles name the classes of generated clients: a request variant's
            # must differ from its message's ("LineItemInput", not "LineItem").
            self.schemas[name]["title"] = name.rsplit(".", 1)[-1]
        return _ref(name)

    def _object(
        self, message: descriptor.Descriptor, exclude: Sequence[str], *, request: bool
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.fields:
            if field.name in exclude or _is_field_mask(field):
                continue
            field_schema, needed = self.property(field, request=request)
            properties[field.name] = field_schema
            if needed:
                required.append(field.name)
        schema: dict[str, Any] = {"type": "object", "title": message.name}
        described = self.comments.get(message.full_name)
        if described:
            schema["description"] = described
        schema["properties"] = properties
        if required:
            schema["required"] = required
        if request:
            # The gateway answers 400 "unknown field" for any other key.
            schema["additionalProperties"] = False
        return schema

    def property(
        self, field: descriptor.FieldDescriptor, *, request: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """`field`'s schema, and whether it must be present in the JSON object."""
        rules = field_rules(field) if request else None
        notes: list[str] = []
        if is_map(field):
            value = message_of(field).fields_by_name["value"]
            keywords = container_keywords(rules, "map")
            single, notes = self._single(value, item_rules(rules, "map"), request=request)
            schema: dict[str, Any] = {"type": "object", "additionalProperties": single, **keywords}
            key_rules = map_key_rules(rules)
            if key_rules is not None:
                names, _ = value_keywords(key_rules, "string")
                if names:
                    schema["propertyNames"] = names
            zero: Any = {}
        elif is_repeated(field):
            keywords = container_keywords(rules, "repeated")
            single, notes = self._single(field, item_rules(rules, "repeated"), request=request)
            schema = {"type": "array", "items": single, **keywords}
            zero = []
        else:
            schema, notes = self._single(field, rules, request=request)
            keywords = schema
            zero = _zero(field)
        behaviour = behaviors(field)
        if "OUTPUT_ONLY" in behaviour:
            schema["readOnly"] = True
        described = self.comments.get(field.full_name, "")
        if notes:
            described = "\n\n".join(filter(None, [described, "Also: " + "; ".join(notes) + "."]))
        if described:
            schema["description"] = described
        if request:
            needed = must_be_sent(field, rules, keywords, zero)
            if rules is not None or needed:
                self.constrained.add(field.full_name)
        else:
            # The gateway prints every field without presence, even when zero.
            needed = not field.has_presence
        return schema, needed

    def field(self, field: descriptor.FieldDescriptor, *, request: bool = False) -> dict[str, Any]:
        """`field`'s schema (what a body or response_body of one field holds)."""
        return self.property(field, request=request)[0]

    def _single(
        self, field: descriptor.FieldDescriptor, rules: Any, *, request: bool
    ) -> tuple[dict[str, Any], list[str]]:
        if field.type == FD.TYPE_MESSAGE:
            return self.message(message_of(field), request=request), []
        kind = rules_kind(field)
        if field.type == FD.TYPE_ENUM:
            keywords, notes = value_keywords(rules, kind, enum_of(field))
            return {**self.enum(enum_of(field)), **keywords}, notes
        keywords, notes = value_keywords(rules, kind)
        return {**_SCALARS[field.type], **keywords}, notes

    def enum(self, enum: descriptor.EnumDescriptor) -> dict[str, str]:
        if enum.full_name not in self.schemas:
            schema: dict[str, Any] = {
                "type": "string",
                "title": enum.name,
                "enum": [value.name for value in enum.values],
            }
            described = self.comments.get(enum.full_name)
            if described:
                schema["description"] = described
            self.schemas[enum.full_name] = schema
        return _ref(enum.full_name)


def _is_field_mask(field: descriptor.FieldDescriptor) -> bool:
    return field.type == FD.TYPE_MESSAGE and message_of(field).full_name == _FIELD_MASK


def _query_parameters(
    message: descriptor.Descriptor,
    prefix: str,
    skip: set[str],
    schemas: SchemaBuilder,
    depth: int = 0,
) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for field in message.fields:
        name = f"{prefix}{field.name}"
        if name in skip or _is_field_mask(field) or is_map(field):
            continue
        if field.type == FD.TYPE_MESSAGE and message_of(field).full_name not in _WELL_KNOWN:
            if not is_repeated(field) and depth < 3:
                parameters.extend(
                    _query_parameters(message_of(field), name + ".", skip, schemas, depth + 1)
                )
            continue
        if field.type == FD.TYPE_MESSAGE and message_of(field).full_name in (
            "google.protobuf.Struct",
            "google.protobuf.Value",
            "google.protobuf.ListValue",
            "google.protobuf.Any",
            "google.protobuf.Empty",
        ):
            continue
        schema, needed = schemas.property(field, request=True)
        parameter: dict[str, Any] = {"name": name, "in": "query"}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        if needed:
            parameter["required"] = True
        parameter["schema"] = schema
        if is_repeated(field):
            parameter["style"] = "form"
            parameter["explode"] = True
        parameters.append(parameter)
    return parameters


def _path_parameter(route: HttpRoute, field_path: str, schemas: SchemaBuilder) -> dict[str, Any]:
    fields = resolve_path(route.method.input_type, field_path) or []
    schema = schemas.property(fields[-1], request=True)[0] if fields else {"type": "string"}
    parameter: dict[str, Any] = {"name": field_path, "in": "path", "required": True}
    if "description" in schema:
        parameter["description"] = schema.pop("description")
    parameter["schema"] = schema
    return parameter


# Every status a route can answer, by where it comes from. Any backend may
# answer any gRPC code, so every HTTP status of the gRPC table is listed for
# every route; the gateway adds its own below (gateway.calls, body_limit,
# ratelimit, resilience, admission, tokens).
_FROM_GRPC = sorted(set(GRPC_TO_HTTP.values()) - {200})
_RETRY_AFTER_STATUSES = (429, 503)
_STATUS_MEANINGS: Mapping[int, str] = {
    400: "The request is invalid: `errors[]` names each rejected field.",
    401: "No valid bearer token, or the credentials are wrong.",
    403: "The caller may not do this.",
    404: "No such resource (or not the caller's).",
    409: "A conflict: the resource exists already, or the first request with this "
    "Idempotency-Key is still in flight (retry later).",
    413: "The request body is larger than the gateway accepts.",
    415: "The request body is not JSON.",
    422: "This Idempotency-Key was used with a different request.",
    429: "Too many requests: retry after `Retry-After` seconds.",
    499: "The request was cancelled.",
    500: "An internal error; nothing is known to have been done.",
    501: "The backend does not implement this operation.",
    503: "The backend is unavailable or shedding load: retry after `Retry-After` seconds.",
    504: "The backend did not answer within the route's deadline.",
}


def route_statuses(route: HttpRoute) -> list[int]:
    """Every error status `route` can answer."""
    statuses = set(_FROM_GRPC)
    if route.body:
        statuses |= {413, 415}
    if route.options.idempotency_key_required:
        # REASON_TO_HTTP: IDEMPOTENCY_KEY_REUSED is only ever given for a keyed request.
        statuses |= {REASON_TO_HTTP["IDEMPOTENCY_KEY_REUSED"], 409}
    return sorted(statuses)


def _error_responses(route: HttpRoute) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {"$ref": f"#/components/responses/Problem{status}"}
        for status in route_statuses(route)
    }
    responses["default"] = {"$ref": "#/components/responses/ProblemDefault"}
    return responses


def _problem_responses() -> dict[str, Any]:
    content = {"application/problem+json": {"schema": _ref("Problem")}}
    responses: dict[str, Any] = {}
    for status, meaning in _STATUS_MEANINGS.items():
        headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
        if status in _RETRY_AFTER_STATUSES:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
        responses[f"Problem{status}"] = {
            "description": f"{TITLES[status]}. {meaning}",
            "headers": headers,
            "content": content,
        }
    return responses


_HEADERS: dict[str, Any] = {
    "X-Request-Id": {
        "description": "The request's id: the client's X-Request-Id when it is 1 to 128 of "
        "[A-Za-z0-9._:-], else a new one. Also in every problem's `request_id`.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Repeating a request with the same key replays its first answer; the same "
    "key with a different body is 422, and while the first is still running, 409. Keys "
    "live at least 24 hours.",
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "example": "order-1234"},
}


def _summary(route: HttpRoute, comment: str) -> tuple[str, str]:
    """The summary (first sentence of the RPC's comment) and the whole comment."""
    if not comment:
        return _words(route.method.name), ""
    first = comment.split("\n\n", 1)[0].replace("\n", " ")
    sentence = re.split(r"(?<=[.;:])\s", first, maxsplit=1)[0].rstrip(".;:")
    return sentence, comment


def _request_part(
    route: HttpRoute,
    operation: dict[str, Any],
    parameters: list[dict[str, Any]],
    description: str,
    schemas: SchemaBuilder,
) -> None:
    """The request body (with its example) and the query parameters of `route`."""
    method = route.method
    path_fields = list(route.path.fields.values())
    top_level_path = {p for p in path_fields if "." not in p}
    body_schema: dict[str, Any] | None = None
    if route.body == "*":
        body_schema = schemas.message(
            method.input_type, exclude=sorted(top_level_path), request=True
        )
    elif not route.body:
        parameters.extend(_query_parameters(method.input_type, "", set(path_fields), schemas))
    else:
        body_field = method.input_type.fields_by_name[route.body]
        body_schema = schemas.field(body_field, request=True)
        parameters.extend(
            _query_parameters(method.input_type, "", {*path_fields, route.body}, schemas)
        )
        if route.http_method == "PATCH":
            patch_note = (
                "Only the fields present in the body are changed (the update mask is "
                "taken from its keys)."
            )
            operation["description"] = "\n\n".join(filter(None, [description, patch_note]))
            mask = method.input_type.fields_by_name.get("update_mask")
            if mask is not None and "REQUIRED" in behaviors(mask):
                # The mask is the body's keys, and it must name a field: an empty body is refused.
                body_schema = {"allOf": [body_schema], "minProperties": 1}
    if body_schema is None:
        return
    media: dict[str, Any] = {"schema": body_schema}
    example = example_of(body_schema, schemas.schemas, request=True)
    if example is not None:
        media["example"] = example
    operation["requestBody"] = {
        # An absent body is read as {}: only a body with required fields must be sent.
        "required": bool(
            _resolve(body_schema, schemas.schemas).get("required")
            or body_schema.get("minProperties")
        ),
        "content": {"application/json": media},
    }


def _success_response(route: HttpRoute, schemas: SchemaBuilder) -> dict[str, Any]:
    method = route.method
    success = str(route.success_status)
    request_id = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if route.success_status == 204:
        return {success: {"description": "Done; no content.", "headers": request_id}}
    if route.response_body:
        schema = schemas.field(method.output_type.fields_by_name[route.response_body])
    else:
        schema = schemas.message(method.output_type)
    media: dict[str, Any] = {"schema": schema}
    example = example_of(schema, schemas.schemas, request=False)
    if example is not None:
        media["example"] = example
    return {
        success: {
            "description": "Success.",
            "headers": request_id,
            "content": {"application/json": media},
        }
    }


def _operation(route: HttpRoute, schemas: SchemaBuilder) -> dict[str, Any]:
    method = route.method
    path_fields = list(route.path.fields.values())
    parameters: list[dict[str, Any]] = [
        _path_parameter(route, field_path, schemas) for field_path in path_fields
    ]
    if route.options.idempotency_key_required:
        parameters.append(IDEMPOTENCY_KEY_PARAMETER)
    summary, description = _summary(route, schemas.comments.get(method.full_name, ""))
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": summary,
        "tags": [method.containing_service.name],
        "parameters": parameters,
        "x-grpc-method": f"{method.containing_service.full_name}/{method.name}",
    }
    if description:
        operation["description"] = description
    _request_part(route, operation, parameters, description, schemas)
    operation["responses"] = _success_response(route, schemas)
    operation["responses"].update(_error_responses(route))
    operation["security"] = [] if route.options.public else [{"bearerAuth": []}]
    if not parameters:
        del operation["parameters"]
    return operation


def _words(name: str) -> str:
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return out[:1].upper() + out[1:]


def _tags(routes: Sequence[HttpRoute], comments: Mapping[str, str]) -> list[dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for route in routes:
        service = route.method.containing_service
        tag = {"name": service.name}
        if comments.get(service.full_name):
            tag["description"] = comments[service.full_name]
        tags.setdefault(service.name, tag)
    return sorted(tags.values(), key=lambda tag: tag["name"])


def build_spec(
    routes: Sequence[HttpRoute],
    title: str = "Switchyard API",
    version: str = "v1",
    comments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (comments: the protos', by default)."""
    schemas = SchemaBuilder(proto_comments() if comments is None else comments)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        item = paths.setdefault(route.path.openapi_path, {})
        item[route.http_method.lower()] = _operation(route, schemas)
    responses = _problem_responses()
    responses["ProblemDefault"] = {
        "description": "An error.",
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    spec: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "The public REST/JSON API of Switchyard. Errors are RFC 9457 "
            "problem+json documents carrying the gRPC status name in `code`. Request bodies "
            "take the proto field names shown here (the lowerCamel JSON names are accepted "
            "too); any other key is refused. Responses may gain fields: ignore unknown ones.",
        },
        "tags": _tags(routes, schemas.comments),
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.schemas.items())),
            "responses": responses,
            "headers": _HEADERS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from /v1/auth/signup, /login or /refresh.",
                }
            },
        },
    }
    add_links(spec)
    return spec
