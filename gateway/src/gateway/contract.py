"""The committed contract: gateway/openapi.json, the spec the gateway serves.

`make openapi` writes it (`python -m gateway.contract write`); the gateway's
tests fail when it differs from what the protos now generate, so every change
to the HTTP contract shows up in review as a diff of that file, and CI's
breaking-change check compares it with the parent commit's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.backends import BACKENDS
from gateway.me import add_me_to_spec
from gateway.openapi import build_spec
from gateway.transcoding import HttpRoute, discover_routes

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi.json"


def public_routes() -> list[HttpRoute]:
    """The routes of every backend in the registry, as a gateway with all of them has."""
    return [route for spec in BACKENDS for route in discover_routes(spec.name, spec.service)]


def public_spec(routes: Sequence[HttpRoute] | None = None) -> dict[str, Any]:
    """The OpenAPI document a gateway with every backend serves at /openapi.json."""
    routes = public_routes() if routes is None else list(routes)
    spec = build_spec(routes)
    add_me_to_spec(spec, routes)
    return spec


def render(spec: dict[str, Any]) -> str:
    """The file's text: sorted keys, 2-space indent, a trailing newline."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`write [path]`: write the spec; `check [path]`: exit 1 when the file differs."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "write"
    path = Path(args[1]) if len(args) > 1 else SPEC_FILE
    text = render(public_spec())
    if command == "write":
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
        return 0
    if command == "check":
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path} differs from the protos' spec: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m gateway.contract write|check [path]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
