"""The mapping from buf.validate rules and field behaviours to JSON Schema keywords,
on a message of its own (built here, in the default pool, with real FieldRules)."""

from __future__ import annotations

from typing import Any

import pytest
from buf.validate import validate_pb2
from gateway.openapi import SchemaBuilder
from gateway.openapi_rules import ecma_pattern
from google.api import field_behavior_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

FDP = descriptor_pb2.FieldDescriptorProto


def _message() -> descriptor.Descriptor:
    pool = descriptor_pool.Default()
    name = "switchyard_test/openapi_rules.proto"
    try:
        return pool.FindMessageTypeByName("switchyard_test.Ruled")
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto(
        name=name,
        package="switchyard_test",
        syntax="proto3",
        dependency=["buf/validate/validate.proto", "google/api/field_behavior.proto"],
    )
    file.enum_type.add(name="Colour").value.extend(
        [
            descriptor_pb2.EnumValueDescriptorProto(name="COLOUR_UNSPECIFIED", number=0),
            descriptor_pb2.EnumValueDescriptorProto(name="COLOUR_RED", number=1),
            descriptor_pb2.EnumValueDescriptorProto(name="COLOUR_BLUE", number=2),
        ]
    )
    message = file.message_type.add(name="RuledRequest")
    number = iter(range(1, 100))

    def add(field_name: str, kind: int, label: int = FDP.LABEL_OPTIONAL) -> Any:
        field = message.field.add(name=field_name, number=next(number), type=kind, label=label)
        if kind == FDP.TYPE_ENUM:
            field.type_name = ".switchyard_test.Colour"
        return field

    name_field = add("name", FDP.TYPE_STRING)
    rules = name_field.options.Extensions[validate_pb2.field]
    rules.string.min_len, rules.string.max_len = 1, 40
    rules.string.pattern = r"\A[[:alpha:] ]+\z"
    email = add("email", FDP.TYPE_STRING)
    email.options.Extensions[validate_pb2.field].string.email = True
    email.options.Extensions[field_behavior_pb2.field_behavior].append(field_behavior_pb2.REQUIRED)
    site = add("site", FDP.TYPE_STRING)
    site.options.Extensions[validate_pb2.field].string.uri = True
    amount = add("amount", FDP.TYPE_INT64)
    amount.options.Extensions[validate_pb2.field].int64.gt = 0
    amount.options.Extensions[validate_pb2.field].int64.lte = 9007199254740991
    note = add("note", FDP.TYPE_STRING)
    note.options.Extensions[validate_pb2.field].string.max_len = 10
    flagged = add("flagged", FDP.TYPE_STRING)
    flagged.options.Extensions[validate_pb2.field].string.pattern = "(?i)abc"
    colour = add("colour", FDP.TYPE_ENUM)
    colour.options.Extensions[validate_pb2.field].enum.defined_only = True
    colour.options.Extensions[validate_pb2.field].enum.not_in.append(0)
    tags = add("tags", FDP.TYPE_STRING, FDP.LABEL_REPEATED)
    tag_rules = tags.options.Extensions[validate_pb2.field]
    tag_rules.repeated.min_items, tag_rules.repeated.max_items = 1, 5
    tag_rules.repeated.items.string.min_len = 2
    owner = add("owner_id", FDP.TYPE_STRING)
    owner.options.Extensions[validate_pb2.field].string.uuid = True
    owner.options.Extensions[field_behavior_pb2.field_behavior].append(
        field_behavior_pb2.OUTPUT_ONLY
    )
    optional = add("nickname", FDP.TYPE_STRING)
    optional_rules = optional.options.Extensions[validate_pb2.field]
    optional_rules.string.min_len = 3
    optional_rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    pool.Add(file)
    return pool.FindMessageTypeByName("switchyard_test.RuledRequest")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    builder = SchemaBuilder({"switchyard_test.RuledRequest.name": "What to call it."})
    ref = builder.message(_message(), request=True)
    schema: dict[str, Any] = builder.schemas[ref["$ref"].rsplit("/", 1)[1]]
    return schema


def test_lengths_and_patterns(schema: dict[str, Any]) -> None:
    name = schema["properties"]["name"]
    assert name["minLength"] == 1
    assert name["maxLength"] == 40
    assert name["pattern"] == "^[A-Za-z ]+$"  # RE2 \A, \z and [:alpha:] in ECMA terms
    assert name["description"] == "What to call it."
    flagged = schema["properties"]["flagged"]
    assert "pattern" not in flagged  # (?i) has no ECMA spelling: said in prose instead
    assert "RE2 pattern (?i)abc" in flagged["description"]


def test_formats_and_bounds(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    assert properties["email"]["format"] == "email"
    assert properties["site"]["format"] == "uri"
    assert properties["owner_id"]["format"] == "uuid"
    assert properties["amount"]["exclusiveMinimum"] == 0
    assert properties["amount"]["maximum"] == 9007199254740991


def test_enums_and_repeated(schema: dict[str, Any]) -> None:
    colour = schema["properties"]["colour"]
    assert colour["enum"] == ["COLOUR_RED", "COLOUR_BLUE"]
    tags = schema["properties"]["tags"]
    assert (tags["minItems"], tags["maxItems"]) == (1, 5)
    assert tags["items"]["minLength"] == 2


def test_required_read_only_and_closed(schema: dict[str, Any]) -> None:
    # REQUIRED behaviour; and fields whose zero value (= absent) the rules refuse.
    assert set(schema["required"]) == {"name", "email", "amount", "colour", "tags"}
    assert "nickname" not in schema["required"]  # IGNORE_IF_ZERO_VALUE lets "" through
    assert schema["properties"]["owner_id"]["readOnly"] is True
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("re2", "ecma"),
    [
        (r"^[A-Za-z0-9._-]{1,64}$", r"^[A-Za-z0-9._-]{1,64}$"),
        (r"\A[[:digit:]]+\z", r"^[0-9]+$"),
        (r"(?P<cc>[A-Z]{3})", r"(?<cc>[A-Z]{3})"),
        (r"(?i)eur", None),
        (r"\pL+", None),
    ],
)
def test_re2_to_ecma(re2: str, ecma: str | None) -> None:
    assert ecma_pattern(re2) == ecma
