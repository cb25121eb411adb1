"""OpenAPI 3.1 generated from the same descriptors the routes come from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor

from gateway.problems import TITLES
from gateway.transcoding import HttpRoute
from gateway.transcoding.json_values import FD, enum_of, is_map, is_repeated, message_of

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


class SchemaBuilder:
    """JSON Schemas of messages and enums, collected under components/schemas."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}

    def message(
        self, message: descriptor.Descriptor, exclude: Sequence[str] = ()
    ) -> dict[str, Any]:
        """A $ref to `message`'s schema (or an inline one without `exclude`d fields)."""
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if exclude:
            return self._object(message, exclude)
        if message.full_name not in self.schemas:
            self.schemas[message.full_name] = {}  # a placeholder stops recursion
            self.schemas[message.full_name] = self._object(message, ())
        return _ref(message.full_name)

    def _object(self, message: descriptor.Descriptor, exclude: Sequence[str]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for field in message.fields:
            if field.name in exclude or _is_field_mask(field):
                continue
            properties[field.name] = self.field(field)
        return {
            "type": "object",
            "title": message.name,
            "properties": properties,
            "additionalProperties": False,
        }

    def field(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            value = message_of(field).fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        if is_repeated(field):
            return {"type": "array", "items": self._single(field)}
        return self._single(field)

    def _single(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if field.type == FD.TYPE_MESSAGE:
            return self.message(message_of(field))
        if field.type == FD.TYPE_ENUM:
            return self.enum(enum_of(field))
        return dict(_SCALARS[field.type])

    def enum(self, enum: descriptor.EnumDescriptor) -> dict[str, str]:
        if enum.full_name not in self.schemas:
            self.schemas[enum.full_name] = {
                "type": "string",
                "title": enum.name,
                "enum": [value.name for value in enum.values],
            }
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
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schemas.field(field)}
        if is_repeated(field):
            parameter["style"] = "form"
            parameter["explode"] = True
        parameters.append(parameter)
    return parameters


def _error_responses(route: HttpRoute) -> dict[str, Any]:
    statuses = [400, 500, 503, 504]
    if not route.options.public:
        statuses.append(401)
    if route.path.fields:
        statuses.append(404)
    responses: dict[str, Any] = {}
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    responses["default"] = {"$ref": "#/components/responses/ProblemDefault"}
    return responses


def _operation(route: HttpRoute, schemas: SchemaBuilder) -> dict[str, Any]:
    method = route.method
    path_fields = list(route.path.fields.values())
    parameters: list[dict[str, Any]] = []
    for field_path in path_fields:
        parameters.append(
            {"name": field_path, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if route.options.idempotency_key_required:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "description": "Repeating a request with the same key replays its first answer.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": _words(method.name),
        "tags": [method.containing_service.name],
        "parameters": parameters,
        "x-grpc-method": f"{method.containing_service.full_name}/{method.name}",
    }
    top_level_path = {p for p in path_fields if "." not in p}
    if route.body == "*":
        body_schema = schemas.message(method.input_type, exclude=sorted(top_level_path))
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body_schema}},
        }
    elif not route.body:
        parameters.extend(_query_parameters(method.input_type, "", set(path_fields), schemas))
    else:
        body_field = method.input_type.fields_by_name[route.body]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.field(body_field)}},
        }
        parameters.extend(
            _query_parameters(method.input_type, "", {*path_fields, route.body}, schemas)
        )
        if route.http_method == "PATCH":
            operation["description"] = (
                "Only the fields present in the body are changed (the update mask is "
                "taken from its keys)."
            )
    success = str(route.success_status)
    if route.success_status == 204:
        operation["responses"] = {success: {"description": "Done; no content."}}
    else:
        if route.response_body:
            schema = schemas.field(method.output_type.fields_by_name[route.response_body])
        else:
            schema = schemas.message(method.output_type)
        operation["responses"] = {
            success: {
                "description": "Success.",
                "content": {"application/json": {"schema": schema}},
            }
        }
    operation["responses"].update(_error_responses(route))
    operation["security"] = [] if route.options.public else [{"bearerAuth": []}]
    if not parameters:
        del operation["parameters"]
    return operation


def _words(name: str) -> str:
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return out[:1].upper() + out[1:]


def build_spec(
    routes: Sequence[HttpRoute], title: str = "Switchyard API", version: str = "v1"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    schemas = SchemaBuilder()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        item = paths.setdefault(route.path.openapi_path, {})
        item[route.http_method.lower()] = _operation(route, schemas)
    problem_content = {"application/problem+json": {"schema": _ref("Problem")}}
    responses: dict[str, Any] = {
        f"Problem{status}": {"description": TITLES[status], "content": problem_content}
        for status in (400, 401, 404, 500, 503, 504)
    }
    responses["ProblemDefault"] = {"description": "An error.", "content": problem_content}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "The public REST/JSON API of Switchyard. Errors are RFC 9457 "
            "problem+json documents carrying the gRPC status name in `code`.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.schemas.items())),
            "responses": responses,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
