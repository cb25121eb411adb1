"""The services' shared command line: command table -> runner, settings, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ServiceSettings, _logging
from switchyard_kit.cli import Command, run_cli


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"
    default_port: ClassVar[int] = 50099
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore", frozen=True)


@pytest.fixture(autouse=True)
def logged_as(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What configure_logging was called with (not reconfiguring this process)."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(_logging, "configure_logging", lambda *args: calls.append(args))
    return calls


def _commands(ran: list[tuple[str, int]]) -> dict[str, Command[ExampleSettings]]:
    def serve(settings: ExampleSettings) -> int:
        ran.append(("serve", settings.port))
        return 0

    def relay(settings: ExampleSettings) -> int:
        ran.append(("relay", settings.port))
        return 3

    return {
        "serve": Command("run the server (the default)", serve, "example"),
        "relay": Command("publish events", relay, "example-relay"),
    }


def test_no_command_runs_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "6001")
    ran: list[tuple[str, int]] = []
    assert run_cli("example_service", "doc", ExampleSettings, _commands(ran), []) == 0
    assert ran == [("serve", 6001)]


def test_the_runner_result_is_the_exit_status(
    monkeypatch: pytest.MonkeyPatch, logged_as: list[tuple[str, str]]
) -> None:
    monkeypatch.delenv("EXAMPLE_PORT", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    ran: list[tuple[str, int]] = []
    assert run_cli("example_service", "doc", ExampleSettings, _commands(ran), ["relay"]) == 3
    assert ran == [("relay", 50099)]
    assert logged_as == [("example-relay", "DEBUG")]


def test_bad_settings_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logged_as: list[tuple[str, str]],
) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "not-a-port")
    ran: list[tuple[str, int]] = []
    assert run_cli("example_service", "doc", ExampleSettings, _commands(ran), ["relay"]) == 2
    assert ran == []
    assert logged_as == []
    assert capsys.readouterr().err.startswith("example_service: ")


def test_an_unknown_command_exits_2_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli("example_service", "doc", ExampleSettings, _commands([]), ["nope"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli("example_service", "The example.", ExampleSettings, _commands([]), ["--help"])
    out = capsys.readouterr().out
    assert "The example." in out
    assert "serve: run the server (the default)" in out
    assert "relay: publish events" in out


def test_a_table_without_serve_is_refused() -> None:
    commands = _commands([])
    del commands["serve"]
    with pytest.raises(ValueError, match="serve"):
        run_cli("example_service", None, ExampleSettings, commands, [])


def test_importing_it_loads_nothing_heavy() -> None:
    probe = (
        "import json, sys, switchyard_kit.cli; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert not loaded & {"grpc", "sqlalchemy", "redis", "alembic", "opentelemetry"}


def test_a_command_with_arguments_gets_them_and_the_others_refuse_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `dead-letters list|show|replay`: the first command with arguments of its own.
    got: list[list[str]] = []
    commands: dict[str, Command[ExampleSettings]] = {
        "serve": Command("run the server", lambda settings: 0, "example"),
        "dead-letters": Command(
            "dead letters",
            lambda settings: 2,
            "example",
            run_with_arguments=lambda settings, arguments: got.append(list(arguments)) or 0,
        ),
    }
    assert (
        run_cli("example", None, ExampleSettings, commands, ["dead-letters", "replay", "1-0"]) == 0
    )
    assert got == [["replay", "1-0"]]
    with pytest.raises(SystemExit) as exited:
        run_cli("example", None, ExampleSettings, commands, ["serve", "extra"])
    assert exited.value.code == 2
    assert "unrecognized arguments: extra" in capsys.readouterr().err
