"""A service the gateway has never seen, built here from a descriptor: its
annotated RPCs become routes (query conversion, verbs, body fields) with no
gateway code."""

from __future__ import annotations

from typing import Any

import openapi_spec_validator
import pytest
from gateway.openapi import build_spec
from gateway.problems import ApiError
from gateway.transcoding import HttpRoute, build_request, discover_routes
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from switchyard.api.v1 import annotations_pb2 as route_annotations
from werkzeug.datastructures import MultiDict

FDP = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, repeated: bool = False, type_name: str = "") -> Any:
    label = FDP.LABEL_REPEATED if repeated else FDP.LABEL_OPTIONAL
    field = FDP(name=name, number=number, type=kind, label=label)  # type: ignore[arg-type]
    if type_name:
        field.type_name = type_name
    return field


@pytest.fixture(scope="module")
def routes() -> dict[str, HttpRoute]:
    file = descriptor_pb2.FileDescriptorProto(
        name="gatewaytest/things.proto",
        package="gatewaytest.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto", "switchyard/api/v1/annotations.proto"],
    )
    file.enum_type.add(name="Color").value.extend(
        [
            descriptor_pb2.EnumValueDescriptorProto(name="COLOR_UNSPECIFIED", number=0),
            descriptor_pb2.EnumValueDescriptorProto(name="RED", number=1),
        ]
    )
    file.message_type.add(name="Page").field.extend(
        [_field("size", 1, FDP.TYPE_INT32), _field("token", 2, FDP.TYPE_STRING)]
    )
    file.message_type.add(name="ListThingsRequest").field.extend(
        [
            _field("shelf", 1, FDP.TYPE_STRING),
            _field("limit", 2, FDP.TYPE_INT32),
            _field("big", 3, FDP.TYPE_INT64),
            _field("ratio", 4, FDP.TYPE_DOUBLE),
            _field("archived", 5, FDP.TYPE_BOOL),
            _field("tags", 6, FDP.TYPE_STRING, repeated=True),
            _field("color", 7, FDP.TYPE_ENUM, type_name=".gatewaytest.v1.Color"),
            _field("page", 8, FDP.TYPE_MESSAGE, type_name=".gatewaytest.v1.Page"),
        ]
    )
    file.message_type.add(name="Thing").field.extend(
        [_field("id", 1, FDP.TYPE_STRING), _field("quantity", 2, FDP.TYPE_INT32)]
    )
    file.message_type.add(name="MoveThingRequest").field.extend(
        [
            _field("id", 1, FDP.TYPE_STRING),
            _field("thing", 2, FDP.TYPE_MESSAGE, type_name=".gatewaytest.v1.Thing"),
        ]
    )
    service = file.service.add(name="ThingService")
    listing = service.method.add(
        name="ListThings",
        input_type=".gatewaytest.v1.ListThingsRequest",
        output_type=".gatewaytest.v1.Thing",
    )
    listing.options.Extensions[annotations_pb2.http].CopyFrom(
        http_pb2.HttpRule(get="/v1/shelves/{shelf}/things")
    )
    move = service.method.add(
        name="MoveThing",
        input_type=".gatewaytest.v1.MoveThingRequest",
        output_type=".gatewaytest.v1.Thing",
    )
    move.options.Extensions[annotations_pb2.http].CopyFrom(
        http_pb2.HttpRule(post="/v1/things/{id}:move", body="thing")
    )
    move.options.Extensions[route_annotations.route].idempotency_key_required = True
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(file.name)
    except KeyError:
        pool.Add(file)
    found = pool.FindServiceByName("gatewaytest.v1.ThingService")
    return {route.method.name: route for route in discover_routes("things", found)}


def test_annotated_rpcs_become_routes(routes: dict[str, HttpRoute]) -> None:
    assert routes["ListThings"].path.rule == "/v1/shelves/<v0>/things"
    assert routes["MoveThing"].path.verb == "move"
    assert routes["MoveThing"].options.idempotency_key_required


def test_query_values_are_converted_to_field_types(routes: dict[str, HttpRoute]) -> None:
    query = MultiDict(
        [
            ("limit", "10"),
            ("big", "9007199254740993"),
            ("ratio", "0.5"),
            ("archived", "true"),
            ("tags", "a"),
            ("tags", "b"),
            ("color", "RED"),
            ("page.size", "3"),
            ("page.token", "t"),
        ]
    )
    request: Any = build_request(routes["ListThings"], {"shelf": "s1"}, query, b"")
    assert request.shelf == "s1"
    assert request.limit == 10
    assert request.big == 9007199254740993
    assert request.ratio == 0.5
    assert request.archived is True
    assert list(request.tags) == ["a", "b"]
    assert request.color == 1
    assert request.page.size == 3
    assert request.page.token == "t"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ([("limit", "ten")], "limit"),
        ([("limit", "99999999999")], "limit"),
        ([("archived", "maybe")], "archived"),
        ([("color", "BLUE")], "color"),
        ([("ratio", "x")], "ratio"),
        ([("limit", "1"), ("limit", "2")], "limit"),
        ([("page", "x")], "page"),
        ([("pageSize", "1")], "pageSize"),
    ],
)
def test_bad_query_values_are_400(
    routes: dict[str, HttpRoute], query: list[tuple[str, str]], field: str
) -> None:
    with pytest.raises(ApiError) as error:
        build_request(routes["ListThings"], {"shelf": "s1"}, MultiDict(query), b"")
    assert error.value.status == 400
    assert [item.field for item in error.value.errors] == [field]


def test_body_field_and_path_variable(routes: dict[str, HttpRoute]) -> None:
    request: Any = build_request(
        routes["MoveThing"], {"id": "t1"}, MultiDict(), b'{"id": "x", "quantity": "4"}'
    )
    assert request.id == "t1"
    assert request.thing.quantity == 4


def test_openapi_of_the_new_service_is_valid(routes: dict[str, HttpRoute]) -> None:
    spec = build_spec(list(routes.values()))
    openapi_spec_validator.validate(spec)
    listing = spec["paths"]["/v1/shelves/{shelf}/things"]["get"]
    names = [parameter["name"] for parameter in listing["parameters"]]
    assert names == [
        "shelf",
        "limit",
        "big",
        "ratio",
        "archived",
        "tags",
        "color",
        "page.size",
        "page.token",
    ]
    move = spec["paths"]["/v1/things/{id}:move"]["post"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= move["parameters"][1].items()
