"""Requests in (path variables + query + JSON body -> request message) and
responses out (response message -> JSON), per google.api.http semantics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor, json_format, message, message_factory
from werkzeug.datastructures import MultiDict

from gateway.problems import ApiError, FieldError
from gateway.transcoding.json_values import (
    FD,
    FieldProblems,
    find_field,
    is_map,
    is_repeated,
    is_well_known,
    message_of,
    normalize_message,
    normalize_value,
)
from gateway.transcoding.render import render_message
from gateway.transcoding.routes import HttpRoute

UPDATE_MASK = "update_mask"
_FIELD_MASK = "google.protobuf.FieldMask"
# Well-known types a query parameter may carry as their JSON string form.
_QUERY_MESSAGES = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.BoolValue",
    "google.protobuf.Int32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.FloatValue",
    "google.protobuf.DoubleValue",
}
_WRAPPED_TYPES: Mapping[str, int] = {
    "google.protobuf.BoolValue": FD.TYPE_BOOL,
    "google.protobuf.Int32Value": FD.TYPE_INT32,
    "google.protobuf.Int64Value": FD.TYPE_INT64,
    "google.protobuf.UInt32Value": FD.TYPE_UINT32,
    "google.protobuf.UInt64Value": FD.TYPE_UINT64,
    "google.protobuf.FloatValue": FD.TYPE_FLOAT,
    "google.protobuf.DoubleValue": FD.TYPE_DOUBLE,
}


def resolve_path(
    root: descriptor.Descriptor, field_path: str
) -> list[descriptor.FieldDescriptor] | None:
    """The fields along a dotted path (proto or JSON names), or None."""
    fields: list[descriptor.FieldDescriptor] = []
    current: descriptor.Descriptor | None = root
    for name in field_path.split("."):
        if current is None:
            return None
        field = find_field(current, name)
        if field is None:
            return None
        fields.append(field)
        current = message_of(field) if field.type == FD.TYPE_MESSAGE else None
    return fields


def _set_path(target: dict[str, Any], names: list[str], value: Any) -> None:
    for name in names[:-1]:
        child = target.setdefault(name, {})
        if not isinstance(child, dict):
            child = {}
            target[name] = child
        target = child
    target[names[-1]] = value


def _from_text(text: str, field: descriptor.FieldDescriptor) -> Any:
    """A query-string or path value as the JSON value of `field`'s type."""
    kind = field.type
    if kind == FD.TYPE_MESSAGE:
        wrapped = _WRAPPED_TYPES.get(message_of(field).full_name)
        if wrapped is None:
            return text
        kind = wrapped
    if kind == FD.TYPE_BOOL:
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        return text
    if kind == FD.TYPE_ENUM:
        return _enum_number(text)
    return text


def _enum_number(text: str) -> int | str:
    """An enum given by number ("2") as that number, else the text (a name, or
    something the enum check refuses). `str.isdigit` is true for "²" and for
    5,000 digits, both of which `int` refuses: only short ASCII digits convert."""
    digits = text.removeprefix("-")
    if digits.isascii() and digits.isdigit() and len(digits) <= 10:
        return int(text)
    return text


def _query_field(
    request_type: descriptor.Descriptor, name: str, bound: set[str], problems: FieldProblems
) -> list[descriptor.FieldDescriptor] | None:
    fields = resolve_path(request_type, name)
    if fields is None:
        problems.add(name, "unknown query parameter")
        return None
    proto_path = ".".join(f.name for f in fields)
    for taken in bound:
        if proto_path == taken or proto_path.startswith(taken + "."):
            problems.add(name, "is already given by the path or the body")
            return None
    for field in fields[:-1]:
        if is_repeated(field):
            problems.add(name, "cannot address a field inside a repeated field")
            return None
    leaf = fields[-1]
    if is_map(leaf) or (
        leaf.type == FD.TYPE_MESSAGE and message_of(leaf).full_name not in _QUERY_MESSAGES
    ):
        problems.add(name, "cannot be given as a query parameter")
        return None
    return fields


def _query_values(
    route: HttpRoute, query: MultiDict[str, str], bound: set[str], problems: FieldProblems
) -> dict[str, Any]:
    request_type = route.method.input_type
    values: dict[str, Any] = {}
    for name in query:
        fields = _query_field(request_type, name, bound, problems)
        if fields is None:
            continue
        leaf = fields[-1]
        texts = query.getlist(name)
        if is_repeated(leaf):
            value: Any = [_from_text(text, leaf) for text in texts]
        elif len(texts) > 1:
            problems.add(name, "given more than once")
            continue
        else:
            value = _from_text(texts[0], leaf)
        _set_path(values, [f.name for f in fields], value)
    return values


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    except UnicodeDecodeError:
        problem = "not valid JSON (not UTF-8)"
    except RecursionError:
        problem = "nested too deeply"
    except ValueError:
        # What is left of json.loads' ValueErrors: an integer with more digits
        # than Python converts (sys.get_int_max_str_digits, 4,300) — far past
        # every field's range anyway.
        problem = "holds a number with too many digits"
    raise ApiError(
        400,
        f"the request body is {problem}",
        errors=[FieldError("(body)", problem)],
    )


def _mask_paths(value: Mapping[str, Any], message: descriptor.Descriptor, prefix: str) -> list[str]:
    """The fields a PATCH body sets, as FieldMask paths (proto names)."""
    paths: list[str] = []
    for name, item in value.items():
        field = message.fields_by_name[name]
        path = f"{prefix}{name}"
        nested = (
            field.type == FD.TYPE_MESSAGE
            and not is_map(field)
            and not is_repeated(field)
            and not is_well_known(message_of(field))
            and isinstance(item, dict)
            and item
        )
        if nested:
            paths.extend(_mask_paths(item, message_of(field), path + "."))
        else:
            paths.append(path)
    return paths


def _has_update_mask(request_type: descriptor.Descriptor) -> bool:
    field = request_type.fields_by_name.get(UPDATE_MASK)
    return (
        field is not None
        and field.type == FD.TYPE_MESSAGE
        and message_of(field).full_name == _FIELD_MASK
    )


def _body_values(
    route: HttpRoute, body: bytes, data: dict[str, Any], problems: FieldProblems
) -> list[str] | None:
    """Puts the body into `data`; returns the update mask a PATCH implies."""
    request_type = route.method.input_type
    payload = _parse_json(body) if body.strip() else {}
    if route.body == "*":
        data.update(normalize_message(payload, request_type, "", problems))
        return None
    body_field = request_type.fields_by_name[route.body]
    value = normalize_value(payload, body_field, "", problems)
    data[body_field.name] = value
    patching = (
        route.http_method == "PATCH"
        and body_field.type == FD.TYPE_MESSAGE
        and _has_update_mask(request_type)
    )
    if patching and isinstance(value, dict):
        return _mask_paths(value, message_of(body_field), "")
    return None


def build_request(
    route: HttpRoute,
    path_values: Mapping[str, str],
    query: MultiDict[str, str],
    body: bytes,
) -> message.Message:
    """The request message of `route`'s RPC, or ApiError(400) naming the field.

    Path variables bind their fields; the body fills the whole message
    (`body: "*"`) or one field; every other field may come from the query.
    A PATCH whose body is one field gets `update_mask` = the keys it sent.
    """
    request_type = route.method.input_type
    problems = FieldProblems()
    data: dict[str, Any] = {}

    bound = {".".join(f.name for f in resolve_path(request_type, p) or []) for p in path_values}
    if route.body == "*":
        bound.add("")
    elif route.body:
        bound.add(route.body)
    if "" in bound:
        for name in query:
            problems.add(name, "unknown query parameter (this route takes its input as JSON)")
    else:
        query_values = _query_values(route, query, bound, problems)
        data.update(normalize_message(query_values, request_type, "", problems))

    mask = _body_values(route, body, data, problems) if route.body else None

    for field_path, text in path_values.items():
        fields = resolve_path(request_type, field_path)
        if fields is None:  # checked when the route was built
            raise ApiError(500, f"route variable {field_path} has no field")
        leaf = fields[-1]
        value = normalize_value(_from_text(text, leaf), leaf, field_path, problems)
        _set_path(data, [f.name for f in fields], value)
    problems.raise_if_any()

    request = message_factory.GetMessageClass(request_type)()
    try:
        json_format.ParseDict(data, request)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        text = str(exc).split("\n", 1)[0][:200]
        raise ApiError(400, f"invalid request: {text}") from None
    if mask is not None:
        getattr(request, UPDATE_MASK).paths.extend(mask)
    return request


def render_response(route: HttpRoute, response: message.Message) -> Any:
    """The JSON value of a response: the whole message or its response_body field.

    Field names as in the proto; fields without presence always printed.
    """
    if not route.response_body:
        return render_message(response)
    field = route.method.output_type.fields_by_name[route.response_body]
    if field.type == FD.TYPE_MESSAGE and not is_repeated(field):
        return render_message(getattr(response, field.name))
    return render_message(response).get(field.name)
