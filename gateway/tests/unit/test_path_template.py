from __future__ import annotations

import pytest
from flask import Flask
from gateway.transcoding import PathTemplate, TemplateConverter, TemplateError


@pytest.mark.parametrize(
    ("template", "rule", "fields", "verb"),
    [
        ("/v1/profiles/me", "/v1/profiles/me", {}, None),
        ("/v1/profiles/{user_id}", "/v1/profiles/<v0>", {"v0": "user_id"}, None),
        ("/v1/files/{path=**}", "/v1/files/<path:v0>", {"v0": "path"}, None),
        ("/v1/{book.name}:archive", "/v1/<v0>:archive", {"v0": "book.name"}, "archive"),
        (
            "/v1/{name=shelves/*}/books",
            '/v1/<tpl("shelves/[^/]+"):v0>/books',
            {"v0": "name"},
            None,
        ),
    ],
)
def test_parse_builds_a_flask_rule(
    template: str, rule: str, fields: dict[str, str], verb: str | None
) -> None:
    parsed = PathTemplate.parse(template)
    assert parsed.rule == rule
    assert parsed.fields == fields
    assert parsed.verb == verb


def test_custom_verb_is_split_off() -> None:
    parsed = PathTemplate.parse("/v1/payments/{payment_id}:cancel")
    assert parsed.verb == "cancel"
    assert parsed.rule == "/v1/payments/<v0>:cancel"
    assert parsed.openapi_path == "/v1/payments/{payment_id}:cancel"


@pytest.mark.parametrize(
    "template",
    [
        "v1/no-slash",
        "/v1/{unclosed",
        "/v1/}x{",
        "/v1/{a=**}/more",
        "/v1/{1bad}",
        "/v1/x:a:b",
        "/v1/{a}/{a}",
        "/v1/**/x",
    ],
)
def test_malformed_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        PathTemplate.parse(template)


@pytest.fixture
def url_adapter() -> object:
    app = Flask("templates")
    app.url_map.converters[TemplateConverter.name] = TemplateConverter
    templates = {
        "me": "/v1/profiles/me",
        "profile": "/v1/profiles/{user_id}",
        "archive": "/v1/{name=shelves/*}/books:archive",
        "file": "/v1/files/{path=**}",
        "cancel": "/v1/things/{thing.id}:cancel",
        "thing": "/v1/things/{thing.id}",
    }
    for endpoint, template in templates.items():
        app.add_url_rule(PathTemplate.parse(template).rule, endpoint, methods=["GET"])
    return app.url_map.bind("localhost")


@pytest.mark.parametrize(
    ("url", "endpoint", "bindings"),
    [
        ("/v1/profiles/me", "me", {}),
        ("/v1/profiles/abc", "profile", {"user_id": "abc"}),
        ("/v1/shelves/12/books:archive", "archive", {"name": "shelves/12"}),
        ("/v1/files/a/b/c.txt", "file", {"path": "a/b/c.txt"}),
        ("/v1/things/7:cancel", "cancel", {"thing.id": "7"}),
        ("/v1/things/7", "thing", {"thing.id": "7"}),
    ],
)
def test_rules_match_and_bind_fields(
    url_adapter: object, url: str, endpoint: str, bindings: dict[str, str]
) -> None:
    matched_endpoint, view_args = url_adapter.match(url)  # type: ignore[attr-defined]
    assert matched_endpoint == endpoint
    templates = {
        "me": "/v1/profiles/me",
        "profile": "/v1/profiles/{user_id}",
        "archive": "/v1/{name=shelves/*}/books:archive",
        "file": "/v1/files/{path=**}",
        "cancel": "/v1/things/{thing.id}:cancel",
        "thing": "/v1/things/{thing.id}",
    }
    assert PathTemplate.parse(templates[endpoint]).bindings(view_args) == bindings
