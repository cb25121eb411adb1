from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
from gateway.backends import BACKENDS
from gateway.contract import SPEC_FILE, public_spec, render
from gateway.openapi import build_spec
from gateway.proto_comments import proto_comments
from gateway.transcoding import discover_routes
from switchyard_kit.idempotency import IDEMPOTENCY_KEY_PATTERN
from switchyard_kit.text import text_problem


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    routes = [route for b in BACKENDS for route in discover_routes(b.name, b.service)]
    return build_spec(routes)


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    openapi_spec_validator.validate(spec)


def test_paths_and_methods(spec: dict[str, Any]) -> None:
    assert set(spec["paths"]) == {
        "/v1/auth/signup",
        "/v1/auth/login",
        "/v1/auth/jwks",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/sessions",
        "/v1/auth/sessions/{session_id}",
        "/v1/auth/sessions:revoke-others",
        "/v1/auth/password",
        "/v1/profiles/me",
        "/v1/profiles/{user_id}",
        "/v1/wallet",
        "/v1/wallet/top-ups",
        "/v1/payments",
        "/v1/payments/{payment_id}",
        "/v1/payments/{payment_id}/refunds",
        "/v1/recommendations",
    }
    assert set(spec["paths"]["/v1/profiles/me"]) == {"get", "patch"}
    parameters = spec["paths"]["/v1/profiles/{user_id}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [("user_id", "path", True)]
    assert parameters[0]["schema"]["type"] == "string"


def test_security_is_bearer_except_public_routes(spec: dict[str, Any]) -> None:
    assert spec["paths"]["/v1/auth/login"]["post"]["security"] == []
    assert spec["paths"]["/v1/profiles/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "401" in spec["paths"]["/v1/profiles/me"]["get"]["responses"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_success_statuses(spec: dict[str, Any]) -> None:
    assert "201" in spec["paths"]["/v1/auth/signup"]["post"]["responses"]
    assert "200" in spec["paths"]["/v1/auth/login"]["post"]["responses"]


def test_schemas_follow_the_messages(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    profile = schemas["switchyard.profile.v1.Profile"]["properties"]
    assert profile["create_time"]["format"] == "date-time"
    assert profile["preferences"]["type"] == "object"
    assert profile["preferences"]["additionalProperties"] == {"type": "string"}
    assert profile["display_name"]["type"] == "string"
    jwks = schemas["switchyard.auth.v1.GetJwksResponse"]["properties"]["keys"]
    assert jwks == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/switchyard.auth.v1.JsonWebKey"},
    }


def test_field_masks_are_hidden(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert "switchyard.profile.v1.UpdateMyProfileRequest" not in schemas
    patch = spec["paths"]["/v1/profiles/me"]["patch"]
    assert "parameters" not in patch
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    # The request variant of Profile: closed, where the response one is open;
    # the update mask is the body's keys and must name a field, so {} is refused.
    assert body == {
        "allOf": [{"$ref": "#/components/schemas/switchyard.profile.v1.ProfileInput"}],
        "minProperties": 1,
    }
    assert patch["requestBody"]["required"] is True


def test_errors_are_problem_json(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/v1/auth/login"]["post"]["responses"]
    assert responses["400"] == {"$ref": "#/components/responses/Problem400"}
    problem = spec["components"]["responses"]["Problem400"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def test_summaries_and_descriptions_come_from_proto_comments(spec: dict[str, Any]) -> None:
    wallet = spec["paths"]["/v1/wallet"]["get"]
    assert wallet["summary"] == "The caller's balances, one per currency they have been funded in"
    tags = {tag["name"]: tag for tag in spec["tags"]}
    assert tags["PaymentService"]["description"].startswith("Wallets, payments and refunds")
    line_item = spec["components"]["schemas"]["switchyard.payment.v1.LineItem"]
    assert line_item["description"] == "One line of a payment."
    assert line_item["properties"]["sku"]["description"].startswith("1 to 64 characters")


def test_comments_are_read_by_full_name() -> None:
    comments = proto_comments()
    assert comments["switchyard.payment.v1.PaymentService.GetWallet"].startswith("The caller's")
    assert "switchyard.payment.v1.CreatePaymentRequest.amount" in comments


def test_every_status_a_route_can_answer_is_documented(spec: dict[str, Any]) -> None:
    for _, _, operation in _operations(spec):
        responses = operation["responses"]
        for status in ("400", "401", "404", "429", "500", "503", "504"):
            assert status in responses, operation["operationId"]
    top_up = spec["paths"]["/v1/wallet/top-ups"]["post"]["responses"]
    assert {"409", "413", "415", "422"} <= set(top_up)
    jwks = spec["paths"]["/v1/auth/jwks"]["get"]["responses"]
    assert not {"413", "415", "422"} & set(jwks)
    for name, response in spec["components"]["responses"].items():
        assert response["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }, name
        assert "X-Request-Id" in response["headers"], name


def test_retry_after_and_request_id_headers(spec: dict[str, Any]) -> None:
    responses = spec["components"]["responses"]
    assert "Retry-After" in responses["Problem429"]["headers"]
    assert "Retry-After" in responses["Problem503"]["headers"]
    assert "Retry-After" not in responses["Problem400"]["headers"]
    ok = spec["paths"]["/v1/wallet"]["get"]["responses"]["200"]
    assert ok["headers"]["X-Request-Id"] == {"$ref": "#/components/headers/X-Request-Id"}


def test_idempotency_key_header_where_the_route_needs_it(spec: dict[str, Any]) -> None:
    for path, method, operation in _operations(spec):
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
        keyed = (path, method) in {
            ("/v1/wallet/top-ups", "post"),
            ("/v1/payments", "post"),
            ("/v1/payments/{payment_id}/refunds", "post"),
        }
        assert [h["name"] for h in headers] == (["Idempotency-Key"] if keyed else []), path
        if keyed:
            assert headers[0]["required"] is True
            assert headers[0]["schema"]["pattern"] == IDEMPOTENCY_KEY_PATTERN


def test_responses_are_open_requests_closed(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    payment = schemas["switchyard.payment.v1.Payment"]
    assert "additionalProperties" not in payment
    # Every field without presence is always printed, so always there.
    assert {"id", "amount", "currency", "items", "status"} <= set(payment["required"])
    assert "create_time" not in payment["required"]
    request = schemas["switchyard.payment.v1.TopUpWalletRequest"]
    assert request["additionalProperties"] is False
    assert schemas["switchyard.payment.v1.LineItemInput"]["additionalProperties"] is False


def test_schema_titles_are_unique(spec: dict[str, Any]) -> None:
    # Generated clients (libs/client) name their classes after the titles: a
    # request variant titled like its message ("LineItem" twice) was dropped.
    titles = [
        schema["title"] for schema in spec["components"]["schemas"].values() if "title" in schema
    ]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
    assert spec["components"]["schemas"]["switchyard.payment.v1.LineItemInput"]["title"] == (
        "LineItemInput"
    )


def test_every_example_fits_its_schema(spec: dict[str, Any]) -> None:
    registry_root = {"components": spec["components"]}
    examples = 0
    for _, _, operation in _operations(spec):
        media: list[dict[str, Any]] = []
        if "requestBody" in operation:
            media.append(operation["requestBody"]["content"]["application/json"])
        for response in operation["responses"].values():
            media.extend(response.get("content", {}).values())
        for item in media:
            if "example" not in item:
                continue
            examples += 1
            schema = {**item["schema"], **registry_root}
            jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            ).validate(item["example"])
    assert examples >= 25
    for _, _, operation in _operations(spec):
        if "requestBody" in operation:
            assert "example" in operation["requestBody"]["content"]["application/json"], operation[
                "operationId"
            ]


def test_the_committed_spec_is_the_generated_one() -> None:
    committed = SPEC_FILE.read_text(encoding="utf-8") if SPEC_FILE.is_file() else ""
    assert committed == render(public_spec()), (
        f"{SPEC_FILE} differs from the spec the protos generate: run `make openapi`"
    )


def test_the_committed_spec_is_valid_openapi() -> None:
    openapi_spec_validator.validate(json.loads(SPEC_FILE.read_text(encoding="utf-8")))


def test_links_chain_what_one_answer_lets_a_client_call_next(spec: dict[str, Any]) -> None:
    # The stateful fuzzer (tests/e2e/test_fuzz.py) follows these.
    def links(path: str, method: str, status: str) -> dict[str, Any]:
        return dict(spec["paths"][path][method]["responses"][status].get("links", {}))

    created = links("/v1/payments", "post", "201")
    assert created["PaymentService_GetPayment"]["parameters"] == {
        "payment_id": "$response.body#/id"
    }
    assert created["PaymentService_RefundPayment"]["parameters"] == {
        "payment_id": "$response.body#/id"
    }
    signed_up = links("/v1/auth/signup", "post", "201")
    assert signed_up["AuthService_Refresh"]["requestBody"] == {
        "refresh_token": "$response.body#/refresh_token"
    }
    assert signed_up["ProfileService_GetPublicProfile"]["parameters"] == {
        "user_id": "$response.body#/user_id"
    }
    sessions = links("/v1/auth/sessions", "get", "200")
    assert sessions["AuthService_RevokeSession"]["parameters"] == {
        "session_id": "$response.body#/sessions/0/session_id"
    }
    # A body is linked only whole: a payment's merchant_id does not make a payment body.
    assert "PaymentService_CreatePayment" not in links("/v1/payments/{payment_id}", "get", "200")
    # Every link names an operation of the document.
    operation_ids = {op["operationId"] for _, _, op in _operations(spec)}
    for _, _, operation in _operations(spec):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in operation_ids


def _published_patterns(schema: dict[str, Any]) -> list[str]:
    patterns = [schema["pattern"]] if "pattern" in schema else []
    return patterns + [part["pattern"] for part in schema.get("allOf", ()) if "pattern" in part]


@pytest.mark.parametrize(
    ("schema_name", "field", "multiline"),
    [
        ("switchyard.payment.v1.CreatePaymentRequest", "description", False),
        ("switchyard.auth.v1.SignUpRequest", "display_name", False),
        ("switchyard.profile.v1.ProfileInput", "bio", True),
    ],
)
def test_published_text_patterns_are_the_kits_text_rule(
    spec: dict[str, Any], schema_name: str, field: str, multiline: bool
) -> None:
    """The predefined text rules (text_rules.proto) publish as patterns that
    admit exactly the characters switchyard_kit.text admits, over the whole BMP."""
    schema = spec["components"]["schemas"][schema_name]["properties"][field]
    patterns = [re.compile(p) for p in _published_patterns(schema)]
    assert patterns
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates are not characters of a JSON string
        text = f"a{chr(code)}b"
        published = all(p.search(text) for p in patterns)
        assert published == (text_problem(text, multiline=multiline) is None), hex(code)


def test_map_keys_publish_as_property_names(spec: dict[str, Any]) -> None:
    preferences = spec["components"]["schemas"]["switchyard.profile.v1.ProfileInput"]["properties"][
        "preferences"
    ]
    assert preferences["propertyNames"] == {"pattern": "^[A-Za-z0-9_.-]{1,64}$"}
    assert preferences["maxProperties"] == 32
