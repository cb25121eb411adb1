from __future__ import annotations

import json
from typing import Any

import pytest
from gateway.backends import AUTH, PAYMENT, PROFILE
from gateway.openapi import _WELL_KNOWN
from gateway.problems import ApiError
from gateway.transcoding import HttpRoute, build_request, discover_routes, render_response
from gateway.transcoding.json_values import NULLABLE_MESSAGES
from gateway.transcoding.messages import _from_text
from switchyard.auth.v1 import auth_pb2
from switchyard.payment.v1 import payment_pb2
from switchyard.profile.v1 import profile_pb2
from werkzeug.datastructures import MultiDict

ROUTES = {
    route.method.name: route
    for spec in (AUTH, PROFILE, PAYMENT)
    for route in discover_routes(spec.name, spec.service)
}


def build(
    method: str,
    body: Any = None,
    query: dict[str, Any] | None = None,
    path: dict[str, str] | None = None,
) -> Any:
    raw = (
        body
        if isinstance(body, bytes)
        else (json.dumps(body).encode() if body is not None else b"")
    )
    args: MultiDict[str, str] = MultiDict()
    for name, value in (query or {}).items():
        for item in value if isinstance(value, list) else [value]:
            args.add(name, item)
    return build_request(ROUTES[method], path or {}, args, raw)


def field_errors(error: pytest.ExceptionInfo[ApiError]) -> dict[str, str]:
    assert error.value.status == 400
    return {item.field: item.description for item in error.value.errors}


def test_only_annotated_rpcs_become_routes() -> None:
    assert set(ROUTES) - set(PAYMENT.service.methods_by_name) == {
        "SignUp",
        "Login",
        "Refresh",
        "Logout",
        "ListSessions",
        "RevokeSession",
        "RevokeOtherSessions",
        "ChangePassword",
        "GetJwks",
        "GetMyProfile",
        "UpdateMyProfile",
        "GetPublicProfile",
    }
    assert "CreateProfile" not in ROUTES
    # Internal and operator RPCs have no google.api.http rule, so no route.
    assert "ListRevokedSessions" not in ROUTES
    assert "RotateSigningKey" not in ROUTES
    assert ROUTES["SignUp"].success_status == 201
    assert ROUTES["SignUp"].options.public
    assert not ROUTES["GetMyProfile"].options.public
    assert ROUTES["GetMyProfile"].timeout_seconds(3000) == 2.0
    assert ROUTES["GetJwks"].timeout_seconds(3000) == 3.0


def test_body_star_accepts_snake_and_camel_case() -> None:
    request = build("SignUp", {"email": "a@b.c", "password": "pw", "displayName": "Ann"})
    assert request == auth_pb2.SignUpRequest(email="a@b.c", password="pw", display_name="Ann")
    request = build("SignUp", {"display_name": "Ann"})
    assert request.display_name == "Ann"


def test_empty_body_is_an_empty_message() -> None:
    assert build("Login", b"") == auth_pb2.LoginRequest()


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"email": 5}, "email", "must be a string"),
        # null is no string (proto3 JSON would read it as unset; the spec says string).
        ({"email": None}, "email", "must not be null"),
        ({"nope": 1}, "nope", "unknown field"),
        ({"email": "a", "emailAddress": "b"}, "emailAddress", "unknown field"),
        ([1, 2], "(body)", "must be an object"),
        ("text", "(body)", "must be an object"),
        (b"{not json", "(body)", "not valid JSON"),
        (b"\xff\xfe", "(body)", "not valid JSON"),
        # More digits than Python's int conversion takes: once a ValueError (500).
        (b'{"email": ' + b"9" * 5000 + b"}", "(body)", "too many digits"),
        (b'{"nope": -' + b"1" * 5000 + b"}", "(body)", "too many digits"),
        (b"[" * 2500 + b"]" * 2500, "(body)", "nested too deeply"),
        (b'{"email": ' + b'{"a": ' * 2500 + b"1" + b"}" * 2501, "(body)", "nested too deeply"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body: Any, field: str, fragment: str) -> None:
    with pytest.raises(ApiError) as error:
        build("Login", body)
    errors = field_errors(error)
    assert fragment in errors[field]


@pytest.mark.parametrize("digits", [25, 5000])
def test_huge_integers_are_out_of_range(digits: int) -> None:
    for number in ("9" * digits, "-" + "9" * digits):
        with pytest.raises(ApiError) as error:
            build("TopUpWallet", b'{"amount": "' + number.encode() + b'", "currency": "EUR"}')
        assert "must be between" in field_errors(error)["amount"]
        with pytest.raises(ApiError) as error:
            build("ListPayments", query={"page_size": number})
        assert "must be between" in field_errors(error)["page_size"]


@pytest.mark.parametrize("text", ["9" * 5000, "\u00b2", "-\u0663"])
def test_enum_text_that_int_refuses_stays_text(text: str) -> None:
    # str.isdigit() is true for all three, int() raised ValueError on them (a 500).
    field = payment_pb2.Payment.DESCRIPTOR.fields_by_name["status"]
    assert _from_text(text, field) == text
    assert _from_text("2", field) == 2


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        # Found by the fuzzer (ST201): an all-optional body took null as "unset".
        ("Logout", {"refresh_token": None}, "refresh_token"),
        ("CreatePayment", {"items": None}, "items"),
        ("CreatePayment", {"items": [None]}, "items[0]"),
        ("UpdateMyProfile", {"preferences": None}, "preferences"),
    ],
)
def test_null_is_refused_where_the_spec_types_no_null(
    method: str, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiError) as error:
        build(method, body)
    assert any(name.endswith(field) for name in field_errors(error)), field_errors(error)


def test_the_spec_types_null_exactly_where_it_is_accepted() -> None:
    nullable = {
        name
        for name, schema in _WELL_KNOWN.items()
        if schema == {} or "null" in (schema.get("type") or [])
    }
    assert nullable == NULLABLE_MESSAGES


def test_same_field_twice_is_refused() -> None:
    with pytest.raises(ApiError) as error:
        build("SignUp", {"display_name": "a", "displayName": "b"})
    assert "given twice" in field_errors(error)["displayName"]


def test_body_routes_take_no_query_parameters() -> None:
    with pytest.raises(ApiError) as error:
        build("Login", {"email": "a"}, query={"email": "b"})
    assert "email" in field_errors(error)


def test_path_variables_bind_fields() -> None:
    request = build("GetPublicProfile", path={"user_id": "u-1"})
    assert request == profile_pb2.GetPublicProfileRequest(user_id="u-1")


def test_unknown_query_parameter_is_400() -> None:
    with pytest.raises(ApiError) as error:
        build("GetMyProfile", query={"verbose": "1"})
    assert field_errors(error) == {"verbose": "unknown query parameter"}


def test_query_cannot_override_a_path_variable() -> None:
    with pytest.raises(ApiError) as error:
        build("GetPublicProfile", path={"user_id": "u-1"}, query={"user_id": "u-2"})
    assert "user_id" in field_errors(error)


def test_patch_fills_update_mask_from_the_keys_sent() -> None:
    request = build(
        "UpdateMyProfile", {"displayName": "Ann", "bio": "", "preferences": {"theme": "dark"}}
    )
    assert request.profile.display_name == "Ann"
    assert dict(request.profile.preferences) == {"theme": "dark"}
    assert list(request.update_mask.paths) == ["display_name", "bio", "preferences"]


def test_patch_with_an_empty_object_sends_an_empty_mask() -> None:
    request = build("UpdateMyProfile", {})
    assert list(request.update_mask.paths) == []


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"preferences": {"theme": 1}}, "preferences.theme", "must be a string"),
        ({"preferences": ["x"]}, "preferences", "must be an object"),
        ({"create_time": "yesterday"}, "create_time", "not a valid Timestamp"),
        ({"bio": None, "locale": True}, "locale", "must be a string"),
        ({"update_mask": "bio"}, "update_mask", "unknown field"),
    ],
)
def test_patch_body_errors_name_the_field(body: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ApiError) as error:
        build("UpdateMyProfile", body)
    assert fragment in field_errors(error)[field]


def test_timestamps_are_rfc3339_strings() -> None:
    request = build("UpdateMyProfile", {"createTime": "2026-01-02T03:04:05Z"})
    assert request.profile.create_time.seconds == 1767323045


def test_response_body_selects_a_field_and_prints_defaults() -> None:
    route = ROUTES["GetMyProfile"]
    response = profile_pb2.GetMyProfileResponse(profile=profile_pb2.Profile(user_id="u-1"))
    rendered = render_response(route, response)
    assert rendered["user_id"] == "u-1"
    assert rendered["display_name"] == ""
    assert rendered["preferences"] == {}


def test_whole_response_when_no_response_body() -> None:
    route = ROUTES["GetJwks"]
    response = auth_pb2.GetJwksResponse(keys=[auth_pb2.JsonWebKey(kid="k", kty="OKP")])
    rendered = render_response(route, response)
    assert rendered["keys"][0]["kid"] == "k"
    assert rendered["keys"][0]["crv"] == ""


def _route(name: str) -> HttpRoute:
    return ROUTES[name]


def test_unset_message_response_body_renders_defaults() -> None:
    rendered = render_response(_route("Login"), auth_pb2.LoginResponse())
    assert rendered == {
        "user_id": "",
        "access_token": "",
        "refresh_token": "",
        "token_type": "",
        "expires_in": 0,
    }
