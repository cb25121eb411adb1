"""JSON Schema keywords from a field's `buf.validate` rules and `google.api.field_behavior`.

The rules are read from the field's options through their extensions
(`buf.validate.field`, a FieldRules message; `google.api.field_behavior`), so
the OpenAPI document says what the services' validating interceptor enforces.
What JSON Schema cannot say (byte lengths, CEL) is written into the
description instead; a pattern RE2 has and ECMA-262 lacks is left out, and
the description says so. A CEL rule that refuses a set of characters,
`!this.matches(r'[...]')` (the predefined text rules of
switchyard/api/v1/text_rules.proto, or a field's own), is published as the
pattern `^[^...]*$`.

Lengths: protovalidate counts code points, as JSON Schema's minLength and
maxLength do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from buf.validate import validate_pb2
from google.api import field_behavior_pb2
from google.protobuf import descriptor

FD = descriptor.FieldDescriptor
_FORMATS = {
    "email": "email",
    "uri": "uri",
    "uri_ref": "uri-reference",
    "uuid": "uuid",
    "hostname": "hostname",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
}
_NUMERIC_RULES = {
    "float",
    "double",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint32",
    "sint64",
    "fixed32",
    "fixed64",
    "sfixed32",
    "sfixed64",
}
# FieldRules.ignore values that let a zero value through.
_IGNORE_ZERO = {validate_pb2.IGNORE_IF_ZERO_VALUE, validate_pb2.IGNORE_ALWAYS}
_POSIX_CLASSES = {
    "alpha": "A-Za-z",
    "digit": "0-9",
    "alnum": "A-Za-z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\t\n\v\f\r ",
    "xdigit": "0-9A-Fa-f",
    "word": "A-Za-z0-9_",
}


def field_rules(field: descriptor.FieldDescriptor) -> validate_pb2.FieldRules | None:
    """The field's `(buf.validate.field)` FieldRules, or None when it has none."""
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.field):
        return None
    return options.Extensions[validate_pb2.field]


def behaviors(field: descriptor.FieldDescriptor) -> set[str]:
    """The field's google.api.field_behavior names (REQUIRED, OUTPUT_ONLY, ...)."""
    values = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return {field_behavior_pb2.FieldBehavior.Name(value) for value in values}


def ecma_pattern(re2: str) -> str | None:
    """An RE2 pattern as ECMA-262 (JSON Schema's dialect), or None when it cannot be said."""
    if re.search(r"\(\?[a-zA-Z]+[:)]", re2) or re.search(r"\\[pP][A-Za-z]", re2):
        return None  # inline flags, one-letter Unicode classes: no ECMA spelling without flags
    if re.search(r"\\[CQE]", re2):
        return None
    out = _ecma_hex(re2).replace(r"\A", "^").replace(r"\z", "$").replace("(?P<", "(?<")

    def posix(match: re.Match[str]) -> str:
        return _POSIX_CLASSES.get(match.group(1), match.group(0))

    out = re.sub(r"\[:(\w+):\]", posix, out)
    return None if re.search(r"\[:\w+:\]", out) else out


# A CEL rule on a set of characters: `!this.matches(r'[set]')` refuses them all,
# `this.matches(r'[set]')` asks for one of them; optionally guarded by a
# predefined rule's `!rule ||`.
_CHARACTER_SET_RULE = re.compile(
    r"(?:!rule \|\| )?(?P<negated>!?)this\.matches\(r'(?P<set>\[[^\]]+\])'\)"
)
# RE2's \x{HHHH} is ECMA-262's \uHHHH (every code point we name is in the BMP).
_RE2_HEX = re.compile(r"\\x\{([0-9A-Fa-f]{1,4})\}")


def _ecma_hex(pattern: str) -> str:
    return _RE2_HEX.sub(lambda match: "\\u" + match.group(1).upper().zfill(4), pattern)


def character_set_patterns(rules: validate_pb2.FieldRules) -> list[str]:
    """The field's CEL rules on sets of characters, its own or predefined
    (switchyard/api/v1/text_rules.proto), as ECMA patterns: a refused set
    becomes `^[^set]*$`, a wanted one `[set]`."""
    expressions = [rule.expression for rule in rules.cel]
    for extension, value in rules.string.ListFields():
        if extension.is_extension and value:
            predefined = extension.GetOptions().Extensions[validate_pb2.predefined]
            expressions.extend(rule.expression for rule in predefined.cel)
    patterns: list[str] = []
    for expression in expressions:
        match = _CHARACTER_SET_RULE.fullmatch(expression)
        if match is None:
            continue
        inside = _ecma_hex(match.group("set"))[1:-1]
        patterns.append(f"^[^{inside}]*$" if match.group("negated") else f"[{inside}]")
    return patterns


def _scalar(value: Any) -> Any:
    return float(value) if isinstance(value, float) else value


def _numeric(rules: Any, keywords: dict[str, Any], notes: list[str]) -> None:
    less = rules.WhichOneof("less_than")
    greater = rules.WhichOneof("greater_than")
    upper = getattr(rules, less) if less else None
    lower = getattr(rules, greater) if greater else None
    if upper is not None and lower is not None and lower >= upper:
        # protovalidate reads gt > lt as "outside the range": no single bound says that.
        notes.append(f"outside [{upper}, {lower}] ({greater} {lower} or {less} {upper})")
        return
    bound = {"lt": "exclusiveMaximum", "lte": "maximum", "gt": "exclusiveMinimum", "gte": "minimum"}
    for which, value in ((less, upper), (greater, lower)):
        if which:
            keywords[bound[which]] = _scalar(value)
    if rules.HasField("const"):
        keywords["const"] = _scalar(rules.const)
    if list(getattr(rules, "in")):
        keywords["enum"] = [_scalar(v) for v in getattr(rules, "in")]
    if list(rules.not_in):
        keywords["not"] = {"enum": [_scalar(v) for v in rules.not_in]}


def _string(rules: validate_pb2.StringRules, keywords: dict[str, Any], notes: list[str]) -> None:
    if rules.HasField("len"):
        keywords["minLength"] = keywords["maxLength"] = rules.len
    if rules.HasField("min_len"):
        keywords["minLength"] = rules.min_len
    if rules.HasField("max_len"):
        keywords["maxLength"] = rules.max_len
    if rules.HasField("min_bytes"):
        notes.append(f"at least {rules.min_bytes} bytes in UTF-8")
    if rules.HasField("max_bytes"):
        notes.append(f"at most {rules.max_bytes} bytes in UTF-8")
    _string_patterns(rules, keywords, notes)
    if rules.HasField("const"):
        keywords["const"] = rules.const
    if list(getattr(rules, "in")):
        keywords["enum"] = list(getattr(rules, "in"))
    if list(rules.not_in):
        keywords["not"] = {"enum": list(rules.not_in)}
    well_known = rules.WhichOneof("well_known")
    if well_known in _FORMATS and getattr(rules, well_known):
        keywords["format"] = _FORMATS[well_known]
    elif well_known:
        notes.append(f"a valid {well_known.replace('_', ' ')}")


def _string_patterns(
    rules: validate_pb2.StringRules, keywords: dict[str, Any], notes: list[str]
) -> None:
    """pattern, prefix, suffix and contains as ECMA patterns (allOf when several)."""
    patterns: list[str] = []
    if rules.HasField("pattern"):
        translated = ecma_pattern(rules.pattern)
        if translated is None:
            notes.append(f"matches the RE2 pattern {rules.pattern}")
        else:
            patterns.append(translated)
    if rules.HasField("prefix"):
        patterns.append("^" + re.escape(rules.prefix))
    if rules.HasField("suffix"):
        patterns.append(re.escape(rules.suffix) + "$")
    if rules.HasField("contains"):
        patterns.append(re.escape(rules.contains))
    if len(patterns) == 1:
        keywords["pattern"] = patterns[0]
    elif patterns:
        keywords["allOf"] = [{"pattern": p} for p in patterns]


def _add_pattern(keywords: dict[str, Any], pattern: str) -> None:
    """`pattern` beside any the field already has (allOf when there are several)."""
    if "allOf" in keywords:
        keywords["allOf"].append({"pattern": pattern})
    elif "pattern" in keywords:
        keywords["allOf"] = [{"pattern": keywords.pop("pattern")}, {"pattern": pattern}]
    else:
        keywords["pattern"] = pattern


def _enum(
    rules: validate_pb2.EnumRules,
    enum: descriptor.EnumDescriptor,
    keywords: dict[str, Any],
) -> None:
    allowed = list(enum.values)
    if list(getattr(rules, "in")):
        wanted = set(getattr(rules, "in"))
        allowed = [v for v in allowed if v.number in wanted]
    if list(rules.not_in):
        refused = set(rules.not_in)
        allowed = [v for v in allowed if v.number not in refused]
    if rules.HasField("const"):
        allowed = [v for v in allowed if v.number == rules.const]
    if len(allowed) != len(enum.values):
        keywords["enum"] = [v.name for v in allowed]


def _repeated(rules: validate_pb2.RepeatedRules, keywords: dict[str, Any]) -> None:
    if rules.HasField("min_items"):
        keywords["minItems"] = rules.min_items
    if rules.HasField("max_items"):
        keywords["maxItems"] = rules.max_items
    if rules.HasField("unique") and rules.unique:
        keywords["uniqueItems"] = True


def _map(rules: validate_pb2.MapRules, keywords: dict[str, Any]) -> None:
    if rules.HasField("min_pairs"):
        keywords["minProperties"] = rules.min_pairs
    if rules.HasField("max_pairs"):
        keywords["maxProperties"] = rules.max_pairs


def _examples(rules: Any) -> list[Any]:
    examples = getattr(rules, "example", None)
    return [_scalar(v) for v in examples] if examples is not None else []


def value_keywords(
    rules: validate_pb2.FieldRules | None,
    kind: str,
    enum: descriptor.EnumDescriptor | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Keywords (and prose notes) of one value's rules: a FieldRules for one scalar or enum.

    `kind` is the FieldRules `type` oneof case expected for the field (string, int64, ...).
    """
    keywords: dict[str, Any] = {}
    notes: list[str] = []
    if rules is None or rules.WhichOneof("type") != kind:
        return keywords, notes
    typed = getattr(rules, kind)
    if kind == "string":
        _string(typed, keywords, notes)
        for pattern in character_set_patterns(rules):
            _add_pattern(keywords, pattern)
    elif kind in _NUMERIC_RULES:
        _numeric(typed, keywords, notes)
    elif kind == "enum" and enum is not None:
        _enum(typed, enum, keywords)
    if kind in _NUMERIC_RULES or kind == "string":
        examples = _examples(typed)
        if examples:
            keywords["examples"] = examples
    return keywords, notes


def container_keywords(rules: validate_pb2.FieldRules | None, kind: str) -> dict[str, Any]:
    """minItems/maxItems (repeated) or minProperties/maxProperties (map) of a field."""
    keywords: dict[str, Any] = {}
    if rules is None or rules.WhichOneof("type") != kind:
        return keywords
    (_repeated if kind == "repeated" else _map)(getattr(rules, kind), keywords)
    return keywords


def item_rules(rules: validate_pb2.FieldRules | None, kind: str) -> validate_pb2.FieldRules | None:
    """The FieldRules of a repeated field's items or a map's values, or None."""
    if rules is None or rules.WhichOneof("type") != kind:
        return None
    container = getattr(rules, kind)
    name = "items" if kind == "repeated" else "values"
    return getattr(container, name) if container.HasField(name) else None


def map_key_rules(rules: validate_pb2.FieldRules | None) -> validate_pb2.FieldRules | None:
    """The FieldRules of a map's keys, or None."""
    if rules is None or rules.WhichOneof("type") != "map" or not rules.map.HasField("keys"):
        return None
    return rules.map.keys


def rules_kind(field: descriptor.FieldDescriptor) -> str:
    """The FieldRules `type` case that applies to a single value of `field`."""
    names: dict[int, str] = {
        FD.TYPE_STRING: "string",
        FD.TYPE_BYTES: "bytes",
        FD.TYPE_BOOL: "bool",
        FD.TYPE_ENUM: "enum",
        FD.TYPE_FLOAT: "float",
        FD.TYPE_DOUBLE: "double",
        FD.TYPE_INT32: "int32",
        FD.TYPE_INT64: "int64",
        FD.TYPE_UINT32: "uint32",
        FD.TYPE_UINT64: "uint64",
        FD.TYPE_SINT32: "sint32",
        FD.TYPE_SINT64: "sint64",
        FD.TYPE_FIXED32: "fixed32",
        FD.TYPE_FIXED64: "fixed64",
        FD.TYPE_SFIXED32: "sfixed32",
        FD.TYPE_SFIXED64: "sfixed64",
    }
    if field.type == FD.TYPE_MESSAGE and field.message_type is not None:
        return {
            "google.protobuf.Duration": "duration",
            "google.protobuf.Timestamp": "timestamp",
            "google.protobuf.Any": "any",
        }.get(field.message_type.full_name, "message")
    return names.get(field.type, "")


def _zero_allowed(keywords: dict[str, Any], zero: Any) -> bool:
    checks: list[Callable[[], bool]] = [
        lambda: keywords.get("minLength", 0) == 0,
        lambda: "minimum" not in keywords or keywords["minimum"] <= zero,
        lambda: "maximum" not in keywords or keywords["maximum"] >= zero,
        lambda: "exclusiveMinimum" not in keywords or keywords["exclusiveMinimum"] < zero,
        lambda: "exclusiveMaximum" not in keywords or keywords["exclusiveMaximum"] > zero,
        lambda: "const" not in keywords or keywords["const"] == zero,
        lambda: "enum" not in keywords or zero in keywords["enum"],
        lambda: keywords.get("minItems", 0) == 0,
        lambda: keywords.get("minProperties", 0) == 0,
    ]
    return all(check() for check in checks)


def must_be_sent(
    field: descriptor.FieldDescriptor,
    rules: validate_pb2.FieldRules | None,
    keywords: dict[str, Any],
    zero: Any,
) -> bool:
    """Whether a request without this field is refused.

    True for a REQUIRED behaviour or a `required` rule, and for a field without
    presence whose rules refuse its zero value (absent and zero are the same
    message: `min_len: 1` refuses an absent string).
    """
    if "REQUIRED" in behaviors(field):
        return True
    if rules is None:
        return False
    if rules.required:
        return True
    if rules.ignore in _IGNORE_ZERO or field.has_presence:
        return False
    return not _zero_allowed(keywords, zero)


__all__ = [
    "behaviors",
    "container_keywords",
    "ecma_pattern",
    "field_rules",
    "item_rules",
    "map_key_rules",
    "must_be_sent",
    "rules_kind",
    "value_keywords",
]
