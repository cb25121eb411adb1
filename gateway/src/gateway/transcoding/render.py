"""Response messages as JSON values, through a renderer compiled once per type.

`render_message(m)` returns exactly what
`int64_as_numbers(MessageToDict(m, preserving_proto_field_name=True,
always_print_fields_with_no_presence=True))` returns, without json_format's
pure-Python walk over the descriptors on every call: proto field names;
fields without presence always printed; fields with presence only when set;
64-bit integers as numbers; floats, NaN/Infinity, bytes, enums and map keys
spelled as json_format spells them. Well-known types (google.protobuf.*) go
to json_format itself, field by field, so their spelling cannot drift; the
rare types the table does not cover (with extensions, or with
pb.enumvalue.json enum names) take the old path whole. The equivalence is
pinned by gateway/tests/unit/test_render.py over every response type of the routes;
bench/render_micro.py measures the gain.

`encode` turns the result into JSON bytes with orjson: every value here is
a str-keyed dict, a list, a str, a bool, None, an int within 64 bits or a
finite float, which orjson writes as the stdlib json would read them back.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any, cast

import orjson
from google.protobuf import descriptor, descriptor_pool, json_format, message
from google.protobuf.internal import type_checkers

from gateway.transcoding.json_values import (
    FD,
    enum_of,
    int64_as_numbers,
    is_map,
    is_well_known,
    message_of,
)

Convert = Callable[[Any], Any]
# One field of a compiled message: its name, whether it is printed only when
# set (it has presence), and how its value becomes JSON (None: as it is).
_Step = tuple[str, bool, Convert | None]

# Generic ToJsonString() is what json_format calls for these three.
_TO_JSON_STRING = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}
# By descriptor (not name): two pools may hold different types of one name.
_RENDERERS: dict[descriptor.Descriptor, Callable[[message.Message], Any]] = {}


def render_message(value: message.Message) -> Any:
    """The JSON value of `value` (a dict, or what a well-known type prints as)."""
    message_type = cast(descriptor.Descriptor, value.DESCRIPTOR)
    render = _RENDERERS.get(message_type)
    if render is None:
        render = _compile(message_type)
    return render(value)


def encode(value: Any) -> bytes:
    """`value` (from render_message, or dicts and lists of such) as JSON bytes."""
    return orjson.dumps(value)


def _json_format(value: message.Message) -> Any:
    return json_format.MessageToDict(
        value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _json_format_numbers(value: message.Message) -> Any:
    return int64_as_numbers(_json_format(value), cast(descriptor.Descriptor, value.DESCRIPTOR))


def _compile(message_type: descriptor.Descriptor) -> Callable[[message.Message], Any]:
    """The renderer of `message_type`, cached only once complete: the worker's
    threads may render the same new type at once, and none may see half a
    table. (A recursive type needs no placeholder: message fields look their
    renderer up when rendering.)"""
    if message_type.full_name in _TO_JSON_STRING:
        render: Callable[[message.Message], Any] = _to_json_string
    elif is_well_known(message_type):
        render = _json_format
    elif message_type.extension_ranges or _has_json_enum_names():
        # Extensions print as "[full.name]" keys, and with the pb.enumvalue.json
        # option loaded enum values may carry JSON names of their own: both rare
        # enough to leave to the old path.
        render = _json_format_numbers
    else:
        render = _regular(
            tuple(
                (field.name, field.has_presence, _field_converter(field))
                for field in message_type.fields
            )
        )
    _RENDERERS[message_type] = render
    return render


def _to_json_string(value: message.Message) -> Any:
    return value.ToJsonString()  # type: ignore[attr-defined]  # Timestamp, Duration, FieldMask


def _regular(steps: tuple[_Step, ...]) -> Callable[[message.Message], dict[str, Any]]:
    def render(value: message.Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, has_presence, convert in steps:
            if has_presence and not value.HasField(name):
                continue
            item = getattr(value, name)
            out[name] = item if convert is None else convert(item)
        return out

    return render


def _field_converter(field: descriptor.FieldDescriptor) -> Convert | None:
    if is_map(field):
        entry = message_of(field)
        key = _map_key(entry.fields_by_name["key"])
        item = _single_converter(entry.fields_by_name["value"])
        return _map(key, item)
    single = _single_converter(field)
    if field.is_repeated:
        return list if single is None else _repeated(single)
    return single


def _map(key: Convert | None, item: Convert | None) -> Convert:
    if key is None:
        if item is None:
            return dict
        return lambda value: {k: item(v) for k, v in value.items()}
    convert_key = key
    convert_item = item or _same
    return lambda value: {convert_key(k): convert_item(v) for k, v in value.items()}


def _same(value: Any) -> Any:
    return value


def _repeated(single: Convert) -> Convert:
    return lambda value: [single(item) for item in value]


def _map_key(field: descriptor.FieldDescriptor) -> Convert | None:
    if field.type == FD.TYPE_STRING:
        return None
    if field.type == FD.TYPE_BOOL:
        return _bool_key
    return str


def _bool_key(key: bool) -> str:
    return "true" if key else "false"


def _single_converter(field: descriptor.FieldDescriptor) -> Convert | None:
    """How one value of `field` becomes JSON; None when it already is its JSON
    value: strings, bools and integers come out of upb as str, bool and int, and
    int64_as_numbers(str(value)) of a 64-bit integer is the value itself."""
    if field.type == FD.TYPE_MESSAGE:
        return render_message
    if field.type == FD.TYPE_ENUM:
        return _enum(field)
    return _SCALARS.get(field.type)


def _enum(field: descriptor.FieldDescriptor) -> Convert:
    enum = enum_of(field)
    if enum.full_name == "google.protobuf.NullValue":
        return lambda number: None
    names = {value.number: value.name for value in enum.values}
    if enum.is_closed:
        # A closed enum's unknown numbers never reach the message (they stay
        # unknown fields), so every number here has a name.
        return names.__getitem__
    # An open enum prints an unknown number as the number.
    return lambda number: names.get(number, number)


def _has_json_enum_names() -> bool:
    try:
        descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
    except KeyError:
        return False
    return True


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _special(value: float) -> str | None:
    if math.isinf(value):
        return "-Infinity" if value < 0.0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return None


def _double(value: float) -> Any:
    if math.isfinite(value):
        return value
    return _special(value)


def _float32(value: float) -> Any:
    if math.isfinite(value):
        # A 32-bit float as the shortest decimal that reads back as the same
        # 32 bits (0.1f prints 0.1, not 0.10000000149011612), as json_format does.
        return type_checkers.ToShortestFloat(value)
    return _special(value)


_SCALARS: dict[int, Convert] = {
    FD.TYPE_BYTES: _bytes,
    FD.TYPE_FLOAT: _float32,
    FD.TYPE_DOUBLE: _double,
}
