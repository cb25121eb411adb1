from __future__ import annotations

from typing import Any

import openapi_spec_validator
import pytest
from gateway.backends import BACKENDS
from gateway.openapi import build_spec
from gateway.transcoding import discover_routes


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
    assert parameters == [
        {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]


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
    assert profile["create_time"] == {"type": "string", "format": "date-time"}
    assert profile["preferences"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert profile["display_name"] == {"type": "string"}
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
    assert body == {"$ref": "#/components/schemas/switchyard.profile.v1.Profile"}


def test_errors_are_problem_json(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/v1/auth/login"]["post"]["responses"]
    assert responses["400"] == {"$ref": "#/components/responses/Problem400"}
    problem = spec["components"]["responses"]["Problem400"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
