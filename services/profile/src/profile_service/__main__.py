"""`python -m profile_service [serve|migrate]` (console script: switchyard-profile)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from switchyard_kit import ConfigurationError, configure_logging, serve, setup_telemetry

from profile_service.config import load_profile_settings
from profile_service.entrypoints.application import build_service, migrate

logger = logging.getLogger("profile")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchyard-profile", description="The Switchyard profile service."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=("serve", "migrate"),
        help="serve: run the gRPC server (default); migrate: apply database migrations",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_profile_settings()
    except ConfigurationError as exc:
        print(f"switchyard-profile: {exc}", file=sys.stderr)
        return 2
    configure_logging("profile", settings.log_level)
    if args.command == "migrate":
        migrate(settings)
        logger.info("migrations applied")
        return 0
    setup_telemetry("profile")
    serve(build_service(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
