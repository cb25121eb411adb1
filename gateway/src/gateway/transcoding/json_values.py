"""Checks JSON (and query-string) values against message descriptors.

Before json_format parses a request, `normalize_message` walks it with the
descriptor so every mistake is reported as a 400 naming the field (in the
client's terms: `display_name`, `items[2].quantity`), and so key spellings
(snake_case or lowerCamel) are folded to proto field names.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import re
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, json_format, message_factory

from gateway.problems import ApiError, FieldError

FD = descriptor.FieldDescriptor

_INT_RANGES: dict[int, tuple[int, int]] = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = {FD.TYPE_FLOAT, FD.TYPE_DOUBLE}
_SPECIAL_FLOATS = {"NaN", "Infinity", "-Infinity"}
# An integer written as a string with more digits than any 64-bit value has.
_LONG_INTEGER = re.compile(r"[+-]?[0-9]{21,}", re.ASCII)
_WELL_KNOWN_PREFIX = "google.protobuf."
_STRUCT_TYPES = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


class FieldProblems:
    """Collects field errors; `raise_if_any` turns them into one 400."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, description: str) -> None:
        self.errors.append(FieldError(path or "(body)", description))

    def raise_if_any(self) -> None:
        if self.errors:
            fields = ", ".join(sorted({error.field for error in self.errors}))
            raise ApiError(400, f"invalid request: {fields}", errors=self.errors)


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def message_of(field: descriptor.FieldDescriptor) -> descriptor.Descriptor:
    """The message type of a message field."""
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def enum_of(field: descriptor.FieldDescriptor) -> descriptor.EnumDescriptor:
    """The enum type of an enum field."""
    if field.enum_type is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return field.enum_type


def is_map(field: descriptor.FieldDescriptor) -> bool:
    return field.type == FD.TYPE_MESSAGE and message_of(field).GetOptions().map_entry


def is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def is_well_known(message: descriptor.Descriptor) -> bool:
    return message.full_name.startswith(_WELL_KNOWN_PREFIX)


def find_field(message: descriptor.Descriptor, key: str) -> descriptor.FieldDescriptor | None:
    """A field by its proto name or its JSON (lowerCamel) name."""
    field = message.fields_by_name.get(key)
    if field is not None:
        return field
    field = message.fields_by_camelcase_name.get(key)
    if field is not None and field.json_name == key:
        return field
    for candidate in message.fields:
        if candidate.json_name == key:
            return candidate
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Invalid(Exception):
    """A value that does not fit its field; the message says why."""


def _integer(value: Any, field: descriptor.FieldDescriptor) -> Any:
    low, high = _INT_RANGES[field.type]
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip() == value:
        if _LONG_INTEGER.fullmatch(value):
            # More digits than `int` converts (4,300): far out of any range.
            raise _Invalid(f"must be between {low} and {high}")
        with contextlib.suppress(ValueError):
            number = int(value)
    if number is None:
        raise _Invalid(f"must be an integer, not {_json_type(value)}")
    if not low <= number <= high:
        raise _Invalid(f"must be between {low} and {high}")
    return number


def _float(value: Any, field: descriptor.FieldDescriptor) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS:
            return value
        parsed = math.nan
        with contextlib.suppress(ValueError):
            parsed = float(value)
        if not math.isnan(parsed):
            return parsed
    raise _Invalid(f"must be a number, not {_json_type(value)}")


def _bool(value: Any, field: descriptor.FieldDescriptor) -> Any:
    if isinstance(value, bool):
        return value
    raise _Invalid(f"must be true or false, not {_json_type(value)}")


def _string(value: Any, field: descriptor.FieldDescriptor) -> Any:
    if isinstance(value, str):
        return value
    raise _Invalid(f"must be a string, not {_json_type(value)}")


def _bytes(value: Any, field: descriptor.FieldDescriptor) -> Any:
    if not isinstance(value, str):
        raise _Invalid(f"must be a base64 string, not {_json_type(value)}")
    padded = value + "=" * (-len(value) % 4)
    try:
        base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("must be base64-encoded bytes") from None
    return value


def _enum(value: Any, field: descriptor.FieldDescriptor) -> Any:
    enum = enum_of(field)
    if isinstance(value, str) and value in enum.values_by_name:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in enum.values_by_number:
        return value
    raise _Invalid("must be one of " + ", ".join(v.name for v in enum.values))


_SCALAR_CHECKS: dict[int, Callable[[Any, descriptor.FieldDescriptor], Any]] = {
    **dict.fromkeys(_INT_RANGES, _integer),
    **dict.fromkeys(_FLOATS, _float),
    FD.TYPE_BOOL: _bool,
    FD.TYPE_STRING: _string,
    FD.TYPE_BYTES: _bytes,
    FD.TYPE_ENUM: _enum,
}


def _scalar(value: Any, field: descriptor.FieldDescriptor, path: str, out: FieldProblems) -> Any:
    check = _SCALAR_CHECKS.get(field.type)
    if check is None:
        out.add(path, "has an unsupported type")
        return None
    try:
        return check(value, field)
    except _Invalid as invalid:
        out.add(path, str(invalid))
        return None


def _well_known(value: Any, message: descriptor.Descriptor, path: str, out: FieldProblems) -> Any:
    if message.full_name == "google.protobuf.FieldMask":
        out.add(path, "is set by the gateway and cannot be sent")
        return None
    message_class = message_factory.GetMessageClass(message)
    try:
        json_format.ParseDict(value, message_class())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        short = message.full_name.removeprefix(_WELL_KNOWN_PREFIX)
        out.add(path, f"is not a valid {short}: {_first_line(exc)}")
        return None
    return value


def _first_line(exc: Exception) -> str:
    text = str(exc).split("\n", 1)[0]
    return text[:200]


def _map_value(value: Any, field: descriptor.FieldDescriptor, path: str, out: FieldProblems) -> Any:
    if not isinstance(value, dict):
        out.add(path, f"must be an object, not {_json_type(value)}")
        return None
    key_field = message_of(field).fields_by_name["key"]
    value_field = message_of(field).fields_by_name["value"]
    result: dict[str, Any] = {}
    for key, item in value.items():
        item_path = f"{path}.{key}" if key_field.type == FD.TYPE_STRING else f"{path}[{key!r}]"
        if key_field.type == FD.TYPE_BOOL:
            if key not in ("true", "false"):
                out.add(item_path, "map key must be true or false")
                continue
        elif key_field.type != FD.TYPE_STRING and _scalar(key, key_field, item_path, out) is None:
            continue
        result[key] = normalize_value(item, value_field, item_path, out)
    return result


# The messages whose JSON form may be null (the OpenAPI document types them so).
NULLABLE_MESSAGES = frozenset(
    {
        "google.protobuf.Value",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
        "google.protobuf.BoolValue",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.FloatValue",
        "google.protobuf.DoubleValue",
    }
)


def normalize_value(
    value: Any, field: descriptor.FieldDescriptor, path: str, out: FieldProblems
) -> Any:
    """`value` checked against `field`: a JSON value ready for json_format."""
    if value is None:
        # proto3 JSON reads null as "unset"; the published contract (OpenAPI)
        # types these fields without null, so null is refused as any other
        # wrong type (a logout with {"refresh_token": null} was a 204). Only a
        # Value or a wrapper (StringValue, ...) holds null, as the spec says.
        if field.type == FD.TYPE_MESSAGE and message_of(field).full_name in NULLABLE_MESSAGES:
            return value
        out.add(path, "must not be null")
        return None
    if is_map(field):
        return _map_value(value, field, path, out)
    if is_repeated(field):
        if not isinstance(value, list):
            out.add(path, f"must be an array, not {_json_type(value)}")
            return None
        return [_single(item, field, f"{path}[{index}]", out) for index, item in enumerate(value)]
    return _single(value, field, path, out)


def _single(value: Any, field: descriptor.FieldDescriptor, path: str, out: FieldProblems) -> Any:
    if field.type == FD.TYPE_MESSAGE:
        message = message_of(field)
        if is_well_known(message) and message.full_name != "google.protobuf.Empty":
            return _well_known(value, message, path, out)
        return normalize_message(value, message, path, out)
    if value is None:
        out.add(path, "must not be null")
        return None
    return _scalar(value, field, path, out)


def normalize_message(
    value: Any, message: descriptor.Descriptor, path: str, out: FieldProblems
) -> dict[str, Any]:
    """A JSON object checked against `message`, keyed by proto field names."""
    if not isinstance(value, dict):
        out.add(path, f"must be an object, not {_json_type(value)}")
        return {}
    result: dict[str, Any] = {}
    seen_oneofs: dict[str, str] = {}
    for key, item in value.items():
        field = find_field(message, key) if isinstance(key, str) else None
        field_path = join(path, str(key))
        if field is None:
            out.add(field_path, "unknown field")
            continue
        if field.name in result:
            out.add(field_path, f"given twice (as {field.name} and {field.json_name})")
            continue
        oneof = field.containing_oneof
        if oneof is not None and item is not None:
            if oneof.name in seen_oneofs:
                out.add(field_path, f"only one of the {oneof.name} fields may be set")
                continue
            seen_oneofs[oneof.name] = field.name
        result[field.name] = normalize_value(item, field, field_path, out)
    return result


_INT64_TYPES = {FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64}


def int64_as_numbers(value: Any, message: descriptor.Descriptor) -> Any:
    """Turn the 64-bit integers that proto3 JSON writes as strings into JSON
    numbers, in place, so clients read money (int64 minor units) as integers.

    Amounts are bounded by the services to 2^53 - 1, which every JSON parser
    reads exactly; requests accept both spellings.
    """
    if not isinstance(value, dict) or is_well_known(message):
        return value
    for key, item in value.items():
        field = message.fields_by_name.get(key)
        if field is None:
            continue
        if is_map(field):
            value_field = message_of(field).fields_by_name["value"]
            value[key] = {k: _field_number(v, value_field) for k, v in item.items()}
        elif is_repeated(field):
            value[key] = [_field_number(v, field) for v in item]
        else:
            value[key] = _field_number(item, field)
    return value


def _field_number(item: Any, field: descriptor.FieldDescriptor) -> Any:
    if field.type in _INT64_TYPES and isinstance(item, str):
        return int(item)
    if field.type == FD.TYPE_MESSAGE:
        return int64_as_numbers(item, message_of(field))
    return item
