"""OpenAPI links derived from the document itself: what one answer lets a
client call next.

An operation's success response links to every operation that takes, as its
path parameters or as its whole request body, identifiers the response
carries (names ending in `_id` or `_token`):

- under the same name at its top level (`Tokens.user_id` ->
  `GET /v1/profiles/{user_id}`, `Tokens.refresh_token` -> `POST /v1/auth/refresh`);
- as the `id` of the message itself, named `<message>_id` (`Payment.id` ->
  `GET /v1/payments/{payment_id}`), or of the first element of a repeated
  field of such messages (`ListSessionsResponse.sessions[0].session_id` ->
  `DELETE /v1/auth/sessions/{session_id}`).

Clients and stateful fuzzers (schemathesis, tests/e2e/test_fuzz.py) follow
them to chain calls: create a payment, then read and refund it.
"""

from __future__ import annotations

import re
from typing import Any

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*_(id|token)$")


def add_links(spec: dict[str, Any]) -> None:
    """Add `links` to the success responses of `spec` (in place)."""
    schemas: dict[str, Any] = spec["components"]["schemas"]
    targets = [
        (operation, _inputs(operation, schemas))
        for item in spec["paths"].values()
        for operation in item.values()
    ]
    for item in spec["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if not status.startswith("2") or "content" not in response:
                    continue
                schema = _resolve(response["content"]["application/json"]["schema"], schemas)
                found = _identifiers(schema, schemas)
                links = _links_to(operation, found, targets)
                if links:
                    response["links"] = links


def _links_to(
    source: dict[str, Any],
    found: dict[str, str],
    targets: list[tuple[dict[str, Any], tuple[list[str], list[str]]]],
) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for target, (path_names, body_names) in targets:
        if target is source:
            continue
        wanted = [*path_names, *body_names]
        # Every path parameter must come from the response, and the body, if
        # linked, whole (a link's body replaces the generated one).
        if not wanted or not all(name in found for name in path_names):
            continue
        parameters = {name: found[name] for name in path_names}
        body = {}
        if body_names and all(name in found for name in body_names):
            body = {name: found[name] for name in body_names}
        if not parameters and not body:
            continue
        link: dict[str, Any] = {"operationId": target["operationId"]}
        if parameters:
            link["parameters"] = parameters
        if body:
            link["requestBody"] = body
        links[target["operationId"]] = link
    return links


def _inputs(operation: dict[str, Any], schemas: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The identifiers an operation takes: in its path, and at the top of its body."""
    path = [
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "path"
    ]
    body: list[str] = []
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        schema = _resolve(content["schema"], schemas)
        writable = [
            name
            for name, value in schema.get("properties", {}).items()
            if not value.get("readOnly")
        ]
        # Only a body made of identifiers alone can come whole from a link.
        if writable and all(_IDENTIFIER.match(name) for name in writable):
            body = writable
    return path, body


def _identifiers(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, str]:
    """Identifier name -> the runtime expression of where `schema` carries it."""
    found: dict[str, str] = {}
    own = _own_id(schema)
    properties: dict[str, Any] = schema.get("properties", {})
    if own is not None:
        found[own[0]] = f"$response.body#/{own[1]}"
    for name, value in properties.items():
        if _IDENTIFIER.match(name) and value.get("type") == "string":
            found.setdefault(name, f"$response.body#/{name}")
        if value.get("type") == "array" and "$ref" in value.get("items", {}):
            element_id = _own_id(_resolve(value["items"], schemas))
            if element_id is not None:
                found.setdefault(element_id[0], f"$response.body#/{name}/0/{element_id[1]}")
    return found


def _own_id(schema: dict[str, Any]) -> tuple[str, str] | None:
    """A message's own identifier: its name as `<message>_id`, and the field
    holding it (`id`, or `<message>_id` itself)."""
    properties = schema.get("properties", {})
    if "title" not in schema:
        return None
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", schema["title"]).lower() + "_id"
    for field in ("id", name):
        if field in properties:
            return name, field
    return None


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = schemas[ref.rsplit("/", 1)[-1]]
        return resolved
    return schema
