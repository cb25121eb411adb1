"""/docs: Swagger UI over /openapi.json, its assets served from the
swagger-ui-py package (nothing is fetched from the internet)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

_ASSETS = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "index.css",
    "favicon-32x32.png",
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Switchyard API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="stylesheet" href="/docs/assets/index.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
"""

_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null
  });
};
"""

# No script or style from elsewhere; the assets above are same-origin.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's files inside the swagger-ui-py package."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_blueprint() -> Blueprint:
    blueprint = Blueprint("docs", __name__)
    assets = swagger_ui_dir()

    @blueprint.get("/docs")
    def page() -> Response:
        return Response(_PAGE, mimetype="text/html", headers={"Content-Security-Policy": _CSP})

    @blueprint.get("/docs/assets/init.js")
    def init() -> Response:
        return Response(_INIT, mimetype="text/javascript")

    @blueprint.get("/docs/assets/<name>")
    def asset(name: str) -> Response:
        if name not in _ASSETS:
            abort(404)
        return send_from_directory(assets, name, max_age=86400)

    return blueprint
