"""`python -m gateway` / `switchyard-gateway`: run the gateway under gunicorn.

The settings are checked first (a bad variable fails here, naming it), then
this process becomes gunicorn (exec), so SIGTERM reaches gunicorn itself.
"""

from __future__ import annotations

import os
import sys

from switchyard_kit import ConfigurationError

from gateway.settings import load_gateway_settings


def gunicorn_argv(extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:gateway.gunicorn_config",
        *extra,
    ]


def main(argv: list[str] | None = None) -> None:
    try:
        load_gateway_settings()
    except ConfigurationError as error:
        print(f"switchyard-gateway: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    args = gunicorn_argv(list(sys.argv[1:] if argv is None else argv))
    os.execv(args[0], args)  # noqa: S606 - our own interpreter running gunicorn


if __name__ == "__main__":
    main()
