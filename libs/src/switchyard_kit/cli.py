"""The command line every service shares: `python -m <name>_service [command]`.

A service's `__main__` is its command table and the runner functions; this
module does the rest the same way for all of them: the argument parser (one
optional positional command, "serve" by default), the settings from the
environment (a `ConfigurationError` prints `<prog>: <what is wrong>` and
exits 2 before anything starts), then JSON logging under the command's
service name, then the runner.

Importing it loads the settings module only (pydantic): no grpc,
SQLAlchemy or OpenTelemetry. Logging (which reads the trace context through
OpenTelemetry) is loaded when a command runs.

Example::

    COMMANDS = {
        "serve": Command("run the gRPC server (the default)", run_server, "payment"),
        "relay": Command("publish outbox events", run_relay, "payment-relay"),
    }

    def main(argv: Sequence[str] | None = None) -> int:
        return run_cli("payment_service", __doc__, PaymentSettings, COMMANDS, argv)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from switchyard_kit._settings import CommonSettings, ConfigurationError, load_settings

__all__ = ["DEFAULT_COMMAND", "Command", "run_cli"]

SettingsT = TypeVar("SettingsT", bound=CommonSettings)

DEFAULT_COMMAND = "serve"


@dataclass(frozen=True)
class Command(Generic[SettingsT]):
    """One command: its help line, what runs it, and the name it logs under."""

    help: str
    # Runs the command with the loaded settings; its result is the exit status.
    run: Callable[[SettingsT], int]
    # The `service` field of every log line (e.g. "payment-relay").
    service: str
    # Runs a command that takes arguments of its own (`dead-letters list`):
    # given the settings and the arguments after the command name. A command
    # without it refuses extra arguments.
    run_with_arguments: Callable[[SettingsT, Sequence[str]], int] | None = None


def run_cli(
    prog: str,
    doc: str | None,
    settings_type: type[SettingsT],
    commands: Mapping[str, Command[SettingsT]],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv` (default: sys.argv), load `settings_type`, configure logging,
    run the chosen command (DEFAULT_COMMAND when none is given); the exit status.

    2 when the settings are invalid (the message names the variable); argparse
    exits 2 itself on an unknown command.
    """
    if DEFAULT_COMMAND not in commands:
        raise ValueError(f"{prog}: the command table needs a {DEFAULT_COMMAND!r} command")
    parser = argparse.ArgumentParser(
        prog=prog,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        default=DEFAULT_COMMAND,
        choices=list(commands),
        help="; ".join(f"{name}: {command.help}" for name, command in commands.items()),
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    command = commands[args.command]
    if args.arguments and command.run_with_arguments is None:
        parser.error(f"unrecognized arguments: {' '.join(args.arguments)}")
    try:
        settings = load_settings(settings_type)
    except ConfigurationError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    from switchyard_kit._logging import configure_logging  # noqa: PLC0415 - keeps the import light

    configure_logging(command.service, settings.log_level)
    if command.run_with_arguments is not None:
        return command.run_with_arguments(settings, args.arguments)
    return command.run(settings)
