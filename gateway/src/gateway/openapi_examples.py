"""Examples for the OpenAPI document, made from the schemas themselves.

A value is taken from the schema's own `examples` (a `buf.validate` rule's
`example`), else its `const` or first `enum` value, else made to fit its
keywords (format, length, bounds, pattern). A pattern is met by trying a few
plain strings; a field none of them fits gets no example, and then neither
does the object that needs it. The gateway's tests check that every example
validates against its schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_REF_PREFIX = "#/components/schemas/"
_FORMATS: Mapping[str, str] = {
    "email": "ada@example.com",
    "uri": "https://example.com/ada.png",
    "uri-reference": "/ada.png",
    "uuid": "3f2c8f1e-8c1b-4e8e-9a57-0d3f2f3b8a11",
    "date-time": "2025-01-31T12:00:00Z",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
# Tried in order against a pattern (with the length bounds).
_CANDIDATES = (
    "Ada Lovelace",
    "en-GB",
    "EUR",
    "ada",
    "ada@example.com",
    "ada@example.com",
    "sku-1",
    "merchant-1",
    "3f2c8f1e-8c1b-4e8e-9a57-0d3f2f3b8a11",
    "3f2c8f1e8c1b4e8e9a570d3f2f3b8a11",
    "a",
    "A",
    "1",
    "correct horse battery staple",
)
_MAX_DEPTH = 6


class _NoExample(Exception):
    """No value fits this schema."""


def resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` with a $ref to components/schemas replaced by its target (siblings kept)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith(_REF_PREFIX):
        return dict(schema)
    target = dict(schemas.get(ref.removeprefix(_REF_PREFIX), {}))
    target.update({k: v for k, v in schema.items() if k != "$ref"})
    return target


def _string(schema: Mapping[str, Any]) -> str:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", 1 << 30))
    patterns = [schema["pattern"]] if "pattern" in schema else []
    patterns += [part["pattern"] for part in schema.get("allOf", ()) if "pattern" in part]
    if "format" in schema and schema["format"] in _FORMATS:
        candidates: tuple[str, ...] = (_FORMATS[schema["format"]],)
    elif not patterns:
        candidates = ("string" if low <= 6 else "x" * low,)
    else:
        candidates = _CANDIDATES
    refused = set(schema.get("not", {}).get("enum", ()))
    for candidate in candidates:
        text = candidate if low <= len(candidate) else candidate + "x" * (low - len(candidate))
        text = text[:high]
        if text in refused or not low <= len(text) <= high:
            continue
        if all(re.search(pattern, text) for pattern in patterns):
            return text
    raise _NoExample


def _number(schema: Mapping[str, Any], integer: bool) -> float | int:
    step = 1 if integer else 0.5
    value: float | int = 1 if integer else 1.5
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + step)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - step)
    return value


def _value(schema: Mapping[str, Any], schemas: Mapping[str, Any], request: bool, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise _NoExample
    schema = resolve(schema, schemas)
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        names = [v for v in schema["enum"] if not str(v).endswith("_UNSPECIFIED")]
        if not names and not schema["enum"]:
            raise _NoExample
        return (names or schema["enum"])[0]
    if "oneOf" in schema:
        return _value(schema["oneOf"][0], schemas, request, depth + 1)
    if "allOf" in schema and "type" not in schema:
        # A schema narrowed by keywords beside it (a PATCH body's minProperties).
        return _value(schema["allOf"][0], schemas, request, depth + 1)
    return _typed(schema, schemas, request, depth)


def _typed(schema: Mapping[str, Any], schemas: Mapping[str, Any], request: bool, depth: int) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object":
        return _object(schema, schemas, request, depth)
    if kind == "array":
        count = max(1, int(schema.get("minItems", 0)))
        return [_value(schema.get("items", {}), schemas, request, depth + 1)] * count
    makers: dict[str, Any] = {
        "string": lambda: _string(schema),
        "integer": lambda: _number(schema, integer=True),
        "number": lambda: _number(schema, integer=False),
        "boolean": lambda: True,
    }
    if kind not in makers:
        raise _NoExample
    return makers[kind]()


def _object(
    schema: Mapping[str, Any], schemas: Mapping[str, Any], request: bool, depth: int
) -> dict[str, Any]:
    required = set(schema.get("required", ()))
    out: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        if request and resolve(sub, schemas).get("readOnly"):
            continue
        try:
            out[name] = _value(sub, schemas, request, depth + 1)
        except _NoExample:
            if name in required:
                raise
    extra = schema.get("additionalProperties")
    if not out and isinstance(extra, dict) and extra:
        out["key"] = _value(extra, schemas, request, depth + 1)
    return out


def example_of(schema: Mapping[str, Any], schemas: Mapping[str, Any], *, request: bool) -> Any:
    """An example value of `schema` (None when none fits); `request` leaves out readOnly fields.

    Example::

        example_of({"type": "string", "format": "email"}, {}, request=True)  # 'ada@example.com'
    """
    try:
        return _value(schema, schemas, request, 0)
    except _NoExample:
        return None


__all__ = ["example_of", "resolve"]
