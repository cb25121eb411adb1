"""The compiled renderer gives exactly the JSON value the json_format path gave
(MessageToDict with proto names and no-presence fields printed, then 64-bit
integers as numbers), for every response type of the routes and for a test
type holding every kind of field; orjson's bytes read back to that value."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from gateway.backends import BACKENDS
from gateway.transcoding import render
from gateway.transcoding.json_values import int64_as_numbers, is_map
from gateway.transcoding.render import encode, render_message
from google.protobuf import (
    any_pb2,
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    message,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FD = descriptor.FieldDescriptor


def old_path(value: message.Message) -> Any:
    """What the gateway rendered before the compiled renderer: the reference."""
    rendered = json_format.MessageToDict(
        value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return int64_as_numbers(rendered, cast(descriptor.Descriptor, value.DESCRIPTOR))


def same(left: Any, right: Any) -> bool:
    """Equal, with NaN equal to NaN (json_format prints NaN as "NaN"; a NaN that
    reached a float would be a bug, and this still compares it)."""
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or (
            left == right and math.copysign(1, left) == math.copysign(1, right)
        )
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def assert_renders_as_before(value: message.Message) -> None:
    expected = old_path(value)
    rendered = render_message(value)
    assert same(rendered, expected), (rendered, expected)
    assert same(json.loads(encode(rendered)), json.loads(json.dumps(expected)))


# --- the types the routes answer with ---------------------------------------


def _reachable(message_type: descriptor.Descriptor, seen: dict[str, descriptor.Descriptor]) -> None:
    if message_type.full_name in seen:
        return
    seen[message_type.full_name] = message_type
    for field in message_type.fields:
        if field.message_type is not None:
            _reachable(field.message_type, seen)


def response_types() -> list[descriptor.Descriptor]:
    seen: dict[str, descriptor.Descriptor] = {}
    for spec in BACKENDS:
        for method in spec.service.methods:
            _reachable(method.output_type, seen)
    return [seen[name] for name in sorted(seen)]


RESPONSE_TYPES = response_types()


def test_the_routes_answer_with_messages() -> None:
    names = {message_type.full_name for message_type in RESPONSE_TYPES}
    assert "switchyard.profile.v1.Profile" in names
    assert "switchyard.payment.v1.GetWalletResponse" in names
    assert "switchyard.recommendation.v1.GetRecommendationsResponse" in names


# --- a test type with every kind of field -----------------------------------

_WELL_KNOWN_FILES = [
    any_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
]
_SCALARS = {
    "f_int32": FD.TYPE_INT32,
    "f_int64": FD.TYPE_INT64,
    "f_uint32": FD.TYPE_UINT32,
    "f_uint64": FD.TYPE_UINT64,
    "f_sint32": FD.TYPE_SINT32,
    "f_sint64": FD.TYPE_SINT64,
    "f_fixed32": FD.TYPE_FIXED32,
    "f_fixed64": FD.TYPE_FIXED64,
    "f_sfixed32": FD.TYPE_SFIXED32,
    "f_sfixed64": FD.TYPE_SFIXED64,
    "f_float": FD.TYPE_FLOAT,
    "f_double": FD.TYPE_DOUBLE,
    "f_bool": FD.TYPE_BOOL,
    "f_string": FD.TYPE_STRING,
    "f_bytes": FD.TYPE_BYTES,
}
_KNOWN = {
    "t_timestamp": "google.protobuf.Timestamp",
    "t_duration": "google.protobuf.Duration",
    "t_mask": "google.protobuf.FieldMask",
    "t_struct": "google.protobuf.Struct",
    "t_value": "google.protobuf.Value",
    "t_list": "google.protobuf.ListValue",
    "t_int64_value": "google.protobuf.Int64Value",
    "t_float_value": "google.protobuf.FloatValue",
    "t_string_value": "google.protobuf.StringValue",
    "t_any": "google.protobuf.Any",
    "t_empty": "google.protobuf.Empty",
}
_PACKAGE = "switchyard.rendertest.v1"


def _add_field(
    message_proto: descriptor_pb2.DescriptorProto,
    name: str,
    kind: int,
    *,
    type_name: str = "",
    repeated: bool = False,
    oneof: int | None = None,
    optional: bool = False,
) -> None:
    field = message_proto.field.add(
        name=name,
        number=len(message_proto.field) + 1,
        type=cast(Any, kind),
        label=cast(Any, FD.LABEL_REPEATED if repeated else FD.LABEL_OPTIONAL),
    )
    if type_name:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    field.proto3_optional = optional


def _add_map(
    message_proto: descriptor_pb2.DescriptorProto,
    name: str,
    key: int,
    value: int,
    value_type: str = "",
) -> None:
    entry = message_proto.nested_type.add(
        name="".join(p.title() for p in name.split("_")) + "Entry"
    )
    entry.options.map_entry = True
    _add_field(entry, "key", key)
    _add_field(entry, "value", value, type_name=value_type)
    _add_field(
        message_proto,
        name,
        FD.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.Everything.{entry.name}",
        repeated=True,
    )


def _everything_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="switchyard/rendertest/v1/everything.proto", package=_PACKAGE, syntax="proto3"
    )
    file.dependency.extend(module.DESCRIPTOR.name for module in _WELL_KNOWN_FILES)
    colour = file.enum_type.add(name="Colour")
    for number, name in enumerate(["COLOUR_UNSPECIFIED", "COLOUR_RED", "COLOUR_GREEN"]):
        colour.value.add(name=name, number=number)
    everything = file.message_type.add(name="Everything")
    for name, kind in _SCALARS.items():
        _add_field(everything, name, kind)
        _add_field(everything, "r_" + name.removeprefix("f_"), kind, repeated=True)
    self_type = f".{_PACKAGE}.Everything"
    _add_field(everything, "f_colour", FD.TYPE_ENUM, type_name=f".{_PACKAGE}.Colour")
    _add_field(everything, "r_colour", FD.TYPE_ENUM, type_name=f".{_PACKAGE}.Colour", repeated=True)
    _add_field(everything, "child", FD.TYPE_MESSAGE, type_name=self_type)
    _add_field(everything, "children", FD.TYPE_MESSAGE, type_name=self_type, repeated=True)
    for name, full_name in _KNOWN.items():
        _add_field(everything, name, FD.TYPE_MESSAGE, type_name="." + full_name)
    _add_field(
        everything,
        "r_timestamp",
        FD.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        repeated=True,
    )
    _add_map(everything, "m_string_int64", FD.TYPE_STRING, FD.TYPE_INT64)
    _add_map(everything, "m_bool_string", FD.TYPE_BOOL, FD.TYPE_STRING)
    _add_map(everything, "m_int32_child", FD.TYPE_INT32, FD.TYPE_MESSAGE, self_type)
    _add_map(everything, "m_uint64_double", FD.TYPE_UINT64, FD.TYPE_DOUBLE)
    _add_map(everything, "m_sint64_float", FD.TYPE_SINT64, FD.TYPE_FLOAT)
    _add_map(everything, "m_string_colour", FD.TYPE_STRING, FD.TYPE_ENUM, f".{_PACKAGE}.Colour")
    _add_map(everything, "m_string_bytes", FD.TYPE_STRING, FD.TYPE_BYTES)
    _add_map(
        everything, "m_string_stamp", FD.TYPE_STRING, FD.TYPE_MESSAGE, ".google.protobuf.Timestamp"
    )
    everything.oneof_decl.add(name="choice")
    _add_field(everything, "o_string", FD.TYPE_STRING, oneof=0)
    _add_field(everything, "o_int64", FD.TYPE_INT64, oneof=0)
    _add_field(everything, "o_child", FD.TYPE_MESSAGE, type_name=self_type, oneof=0)
    _add_field(everything, "o_colour", FD.TYPE_ENUM, type_name=f".{_PACKAGE}.Colour", oneof=0)
    # proto3 `optional`: a synthetic oneof each.
    for name, kind in [("p_int64", FD.TYPE_INT64), ("p_string", FD.TYPE_STRING)]:
        everything.oneof_decl.add(name="_" + name)
        _add_field(everything, name, kind, oneof=len(everything.oneof_decl) - 1, optional=True)
    return file


def _everything_type() -> descriptor.Descriptor:
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(f"{_PACKAGE}.Everything")
    except KeyError:
        pool.AddSerializedFile(_everything_file().SerializeToString())
        return pool.FindMessageTypeByName(f"{_PACKAGE}.Everything")


EVERYTHING = _everything_type()


# --- deterministic instances: every field set, edge values ------------------

_EDGES: dict[int, list[Any]] = {
    FD.TYPE_INT32: [-(2**31), 2**31 - 1, 7],
    FD.TYPE_SINT32: [-(2**31), 2**31 - 1],
    FD.TYPE_SFIXED32: [-(2**31), 2**31 - 1],
    FD.TYPE_UINT32: [2**32 - 1, 1],
    FD.TYPE_FIXED32: [2**32 - 1, 1],
    FD.TYPE_INT64: [-(2**63), 2**63 - 1, 2**53 + 1],
    FD.TYPE_SINT64: [-(2**63), 2**63 - 1],
    FD.TYPE_SFIXED64: [-(2**63), 2**63 - 1],
    FD.TYPE_UINT64: [2**64 - 1, 1],
    FD.TYPE_FIXED64: [2**64 - 1, 1],
    FD.TYPE_FLOAT: [0.1, -0.0, math.nan, math.inf, -math.inf, 3.4028234663852886e38, 1e-45, 1.5],
    FD.TYPE_DOUBLE: [0.1, -0.0, math.nan, math.inf, -math.inf, 1.7976931348623157e308, 5e-324],
    FD.TYPE_BOOL: [True],
    FD.TYPE_STRING: ['žluťoučký kůň 🐎 \u2028 "quoted" \\ \x00', "Ann"],
    FD.TYPE_BYTES: [b"\x00\xff\xfe\xfa binary", b"?>"],
}


def _known_values(full_name: str) -> list[message.Message]:
    stamp = timestamp_pb2.Timestamp(seconds=1767323045, nanos=120_000_000)
    struct = struct_pb2.Struct()
    struct.update({"a": 1.5, "b": [True, None, "x"], "c": {"d": "e"}})
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.Int64Value(value=2**62))
    values: dict[str, list[message.Message]] = {
        "google.protobuf.Timestamp": [stamp, timestamp_pb2.Timestamp()],
        "google.protobuf.Duration": [duration_pb2.Duration(seconds=-3, nanos=-5000)],
        "google.protobuf.FieldMask": [field_mask_pb2.FieldMask(paths=["a.b", "c_d"])],
        "google.protobuf.Struct": [struct],
        "google.protobuf.Value": [struct_pb2.Value(string_value="v"), struct_pb2.Value()],
        "google.protobuf.ListValue": [struct["b"]],
        "google.protobuf.Int64Value": [wrappers_pb2.Int64Value(value=-(2**63))],
        "google.protobuf.FloatValue": [wrappers_pb2.FloatValue(value=math.nan)],
        "google.protobuf.StringValue": [wrappers_pb2.StringValue(value="")],
        "google.protobuf.Any": [packed, any_pb2.Any()],
        "google.protobuf.Empty": [empty_pb2.Empty()],
    }
    return values[full_name]


def _edge(field: descriptor.FieldDescriptor, round_: int, offset: int) -> Any:
    if field.type == FD.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [value.number for value in field.enum_type.values] + [99]
        return numbers[(round_ + offset) % len(numbers)]
    edges = _EDGES[field.type]
    return edges[(round_ + offset) % len(edges)]


def _map_key(field: descriptor.FieldDescriptor, index: int) -> Any:
    if field.type == FD.TYPE_STRING:
        return ["", "ключ 🗝"][index]
    if field.type == FD.TYPE_BOOL:
        return [True, False][index]
    return _EDGES[field.type][index]


def populate(value: message.Message, round_: int, depth: int = 0) -> None:
    """Sets every field of `value` (repeated: 2 items, maps: 2 entries), the
    oneof member number `round_`, message fields only while `depth` < 2 and
    proto3 optional fields in odd rounds; values cycle through the edges."""
    message_type = cast(descriptor.Descriptor, value.DESCRIPTOR)
    if message_type.full_name.startswith("google.protobuf."):
        value.CopyFrom(_known_values(message_type.full_name)[round_ % 2 - 1])
        return
    for offset, field in enumerate(message_type.fields):
        oneof = field.containing_oneof
        if oneof is not None:
            synthetic = len(oneof.fields) == 1
            if synthetic and round_ % 2 == 0:
                continue
            if not synthetic and oneof.fields[round_ % len(oneof.fields)] is not field:
                continue
        if field.type == FD.TYPE_MESSAGE and depth >= 2:
            continue
        _populate_field(value, field, round_, offset, depth)


def _populate_field(
    value: message.Message, field: descriptor.FieldDescriptor, round_: int, offset: int, depth: int
) -> None:
    target = getattr(value, field.name)
    if is_map(field):
        assert field.message_type is not None
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        for index in range(2):
            key = _map_key(key_field, index)
            if value_field.type == FD.TYPE_MESSAGE:
                populate(target[key], round_ + index, depth + 1)
            else:
                target[key] = _edge(value_field, round_ + index, offset)
    elif field.is_repeated:
        for index in range(2):
            if field.type == FD.TYPE_MESSAGE:
                populate(target.add(), round_ + index, depth + 1)
            else:
                target.append(_edge(field, round_ + index, offset))
    elif field.type == FD.TYPE_MESSAGE:
        populate(target, round_, depth + 1)
        target.SetInParent()
    else:
        setattr(value, field.name, _edge(field, round_, offset))


def _instances(message_type: descriptor.Descriptor) -> Iterator[message.Message]:
    message_class = message_factory.GetMessageClass(message_type)
    yield message_class()
    for round_ in range(8):
        instance = message_class()
        populate(instance, round_)
        yield instance


@pytest.mark.parametrize("message_type", RESPONSE_TYPES, ids=lambda d: d.full_name)
def test_every_response_type_renders_as_before(message_type: descriptor.Descriptor) -> None:
    for instance in _instances(message_type):
        assert_renders_as_before(instance)


def test_every_kind_of_field_renders_as_before() -> None:
    for instance in _instances(EVERYTHING):
        assert_renders_as_before(instance)


def test_the_test_type_reaches_every_edge() -> None:
    """The rounds above do print what they are meant to exercise."""
    rendered = [render_message(instance) for instance in _instances(EVERYTHING)]
    floats = {json.dumps(item["f_float"]) for item in rendered}
    assert {'"NaN"', '"Infinity"', '"-Infinity"', "0.1", "-0.0", "1.4013e-45"} <= floats
    assert {item["f_int64"] for item in rendered} >= {-(2**63), 2**63 - 1}
    assert {item["f_colour"] for item in rendered} >= {"COLOUR_RED", 99}
    assert any("o_child" in item for item in rendered)
    assert any("p_int64" in item for item in rendered)
    assert not all("p_int64" in item for item in rendered)
    assert rendered[1]["m_bool_string"].keys() == {"true", "false"}
    assert rendered[2]["t_any"]["value"] == str(2**62)  # int64 inside Any: as json_format


# --- random instances -------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
_INTS = {
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


_OTHER_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FD.TYPE_FLOAT: st.floats(width=32),
    FD.TYPE_DOUBLE: st.floats(),
    FD.TYPE_BOOL: st.booleans(),
    FD.TYPE_BYTES: st.binary(max_size=8),
    FD.TYPE_STRING: _TEXT,
}


def _scalar(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INTS:
        low, high = _INTS[field.type]
        return st.integers(low, high)
    if field.type == FD.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([value.number for value in field.enum_type.values] + [99, -1])
    return _OTHER_SCALARS[field.type]


Setter = Callable[[message.Message], None]


def _setter(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Setter]:
    """A strategy for a function that sets `field` on a message."""
    if is_map(field):
        assert field.message_type is not None
        key = _scalar(field.message_type.fields_by_name["key"])
        item = _value(field.message_type.fields_by_name["value"], depth)
        return st.dictionaries(key, item, max_size=3).map(
            lambda entries: lambda m: _put_map(getattr(m, field.name), entries)
        )
    item = _value(field, depth)
    if field.is_repeated:
        return st.lists(item, max_size=3).map(
            lambda items: lambda m: _put_list(getattr(m, field.name), items)
        )
    if field.type == FD.TYPE_MESSAGE:
        return item.map(lambda child: lambda m: getattr(m, field.name).CopyFrom(child))
    return item.map(lambda scalar: lambda m: setattr(m, field.name, scalar))


def _put_map(target: Any, entries: dict[Any, Any]) -> None:
    for key, item in entries.items():
        if isinstance(item, message.Message):
            target[key].CopyFrom(item)
        else:
            target[key] = item


def _put_list(target: Any, items: list[Any]) -> None:
    for item in items:
        if isinstance(item, message.Message):
            target.add().CopyFrom(item)
        else:
            target.append(item)


def _value(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_MESSAGE:
        assert field.message_type is not None
        return messages(field.message_type, depth + 1)
    return _scalar(field)


def messages(message_type: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of `message_type` with any subset of fields set (nesting
    stops at depth 2; well-known types from a fixed list)."""
    if message_type.full_name.startswith("google.protobuf."):
        return st.sampled_from(_known_values(message_type.full_name))
    fields = [
        field
        for field in message_type.fields
        if depth < 2 or field.type != FD.TYPE_MESSAGE or not field.is_repeated
        if depth < 3 or field.type != FD.TYPE_MESSAGE
    ]
    optional = {field.name: _setter(field, depth) for field in fields}
    message_class = message_factory.GetMessageClass(message_type)

    def build(setters: dict[str, Setter]) -> message.Message:
        instance = message_class()
        for set_field in setters.values():
            set_field(instance)
        return instance

    return st.fixed_dictionaries({}, optional=optional).map(build)


_RANDOM = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    "message_type",
    [t for t in RESPONSE_TYPES if t.name.endswith("Response")],
    ids=lambda d: d.full_name,
)
def test_random_responses_render_as_before(message_type: descriptor.Descriptor) -> None:
    @_RANDOM
    @given(messages(message_type))
    def check(instance: message.Message) -> None:
        assert_renders_as_before(instance)

    check()


@_RANDOM
@given(messages(EVERYTHING))
def test_random_instances_of_every_kind_render_as_before(instance: message.Message) -> None:
    assert_renders_as_before(instance)


def test_a_renderer_is_cached_only_once_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's threads share the cache: while one compiles a type, another
    must not find its renderer with only some of the fields in it."""
    monkeypatch.setattr(render, "_RENDERERS", {})
    compile_field = render._field_converter
    seen_early: list[str] = []

    def watching(field: descriptor.FieldDescriptor) -> Any:
        if field.containing_type in render._RENDERERS:
            seen_early.append(field.full_name)
        return compile_field(field)

    monkeypatch.setattr(render, "_field_converter", watching)
    for instance in _instances(EVERYTHING):
        assert_renders_as_before(instance)
    assert seen_early == []


def test_types_with_extensions_are_left_to_json_format() -> None:
    """Extensions print as "[full.name]" keys: json_format does them."""
    pool = descriptor_pool.Default()
    name = f"{_PACKAGE}.Extendable"
    try:
        extendable = pool.FindMessageTypeByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name="switchyard/rendertest/v1/extendable.proto", package=_PACKAGE, syntax="proto2"
        )
        message_proto = file.message_type.add(name="Extendable")
        _add_field(message_proto, "plain", FD.TYPE_INT64)
        message_proto.extension_range.add(start=100, end=200)
        file.extension.add(
            name="big",
            number=100,
            type=cast(Any, FD.TYPE_INT64),
            label=cast(Any, FD.LABEL_OPTIONAL),
            extendee="." + name,
        )
        pool.AddSerializedFile(file.SerializeToString())
        extendable = pool.FindMessageTypeByName(name)
    instance = message_factory.GetMessageClass(extendable)(plain=7)
    instance.Extensions[pool.FindExtensionByName(f"{_PACKAGE}.big")] = 2**62
    assert_renders_as_before(instance)
    assert render_message(instance)[f"[{_PACKAGE}.big]"] == str(2**62)


def test_json_enum_names_leave_the_type_to_json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the pb.enumvalue.json option loaded an enum value may have a JSON
    name of its own; the renderer then leaves the type to json_format, which
    looks the option up by that name."""
    assert "'pb.enumvalue.json'" in inspect.getsource(json_format)
    assert not render._has_json_enum_names()  # here the compiled path runs
    monkeypatch.setattr(render, "_RENDERERS", {})
    monkeypatch.setattr(render, "_has_json_enum_names", lambda: True)
    for instance in _instances(EVERYTHING):
        assert_renders_as_before(instance)
    assert render._RENDERERS[EVERYTHING] is render._json_format_numbers
