"""google.api.http path templates -> Flask (Werkzeug) URL rules.

Grammar (google/api/http.proto)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

`{name}` matches one segment, `{name=**}` the rest of the path, and
`{name=shelves/*}` a fixed shape; nested fields (`{book.shelf}`) bind into
sub-messages. Werkzeug variable names cannot hold dots, so variables are
named v0, v1... and `fields` maps them back to field paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from werkzeug.routing import BaseConverter, Map

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")
_ONE_SEGMENT = "[^/]+"
_ANY_SEGMENTS = "[^/].*?"


class TemplateError(ValueError):
    """A google.api.http path that does not follow the template grammar."""


class TemplateConverter(BaseConverter):
    """Werkzeug converter matching a regex given in the rule: <tpl("a/[^/]+"):v0>."""

    name: ClassVar[str] = "tpl"
    # The pattern may span segments, so Werkzeug matches it against the whole path.
    part_isolating = False

    def __init__(self, url_map: Map, pattern: str) -> None:
        super().__init__(url_map)
        self.regex = pattern


def _split_outside_braces(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"unbalanced '}}' in {text!r}")
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise TemplateError(f"unbalanced '{{' in {text!r}")
    parts.append(current)
    return parts


def _segments_regex(segments: list[str], template: str) -> str:
    """The regex matched by the sub-pattern of a variable (`shelves/*/books/**`)."""
    pieces: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "*":
            pieces.append(_ONE_SEGMENT)
        elif segment == "**":
            if index != len(segments) - 1:
                raise TemplateError(f"'**' must be the last segment in {template!r}")
            pieces.append(_ANY_SEGMENTS)
        elif _LITERAL.match(segment):
            pieces.append(re.escape(segment))
        else:
            raise TemplateError(f"invalid segment {segment!r} in {template!r}")
    return "/".join(pieces)


@dataclass(frozen=True)
class PathTemplate:
    """A parsed template: the Flask rule and which rule variable is which field.

    Example::

        t = PathTemplate.parse("/v1/{name=shelves/*}/books:archive")
        t.rule    == '/v1/<tpl("shelves/[^/]+"):v0>/books:archive'
        t.fields  == {"v0": "name"}
        t.verb    == "archive"
    """

    template: str
    rule: str
    fields: dict[str, str]
    verb: str | None

    @classmethod
    def parse(cls, template: str) -> PathTemplate:
        if not template.startswith("/"):
            raise TemplateError(f"a path template starts with '/': {template!r}")
        parts, verb = _split_verb(template)
        fields: dict[str, str] = {}
        rule_parts: list[str] = []
        wildcard = 0
        for index, part in enumerate(parts):
            if part.startswith("{") and part.endswith("}"):
                inner = part[1:-1]
                field_path, _, sub = inner.partition("=")
                if not _IDENT.match(field_path):
                    raise TemplateError(f"invalid field path {field_path!r} in {template!r}")
                if field_path in fields.values():
                    raise TemplateError(f"{field_path!r} bound twice in {template!r}")
                name = f"v{len(fields)}"
                fields[name] = field_path
                sub_segments = sub.split("/") if sub else ["*"]
                if "**" in sub_segments and index != len(parts) - 1:
                    raise TemplateError(f"'**' must end the template {template!r}")
                rule_parts.append(_converter(sub_segments, name, template))
            elif part in ("*", "**"):
                if part == "**" and index != len(parts) - 1:
                    raise TemplateError(f"'**' must end the template {template!r}")
                rule_parts.append(_converter([part], f"w{wildcard}", template))
                wildcard += 1
            elif _LITERAL.match(part):
                rule_parts.append(part)
            else:
                raise TemplateError(f"invalid segment {part!r} in {template!r}")
        rule = "/" + "/".join(rule_parts)
        if verb is not None:
            rule += f":{verb}"
        return cls(template=template, rule=rule, fields=fields, verb=verb)

    def bindings(self, view_args: dict[str, Any]) -> dict[str, str]:
        """Field path -> value of the variables Flask matched (wildcards dropped)."""
        return {
            self.fields[name]: str(value)
            for name, value in view_args.items()
            if name in self.fields
        }

    @property
    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: /v1/profiles/{user_id}."""
        path = self.rule
        for name, field_path in self.fields.items():
            path = re.sub(rf"<(?:[^<>]*:)?{name}>", "{" + field_path + "}", path)
        return path


def _split_verb(template: str) -> tuple[list[str], str | None]:
    """The template's segments, and its custom verb (`:cancel`) if any."""
    parts = _split_outside_braces(template[1:], "/")
    last = _split_outside_braces(parts[-1], ":")
    if len(last) == 1:
        return parts, None
    if len(last) > 2:
        raise TemplateError(f"more than one ':' in the last segment of {template!r}")
    parts[-1], verb = last
    if not _LITERAL.match(verb):
        raise TemplateError(f"invalid verb {verb!r} in {template!r}")
    return parts, verb


def _converter(segments: list[str], name: str, template: str) -> str:
    if segments == ["*"]:
        return f"<{name}>"
    if segments == ["**"]:
        return f"<path:{name}>"
    pattern = _segments_regex(segments, template)
    if '"' in pattern:
        raise TemplateError(f"invalid characters in {template!r}")
    return f'<{TemplateConverter.name}("{pattern}"):{name}>'
