"""`python -m auth_service`: start-up checks that stop a misconfigured process."""

from __future__ import annotations

import os
import subprocess
import sys

from auth_service.__main__ import run_server
from auth_service.entrypoints.app import database_from, handlers_from


def test_production_without_a_key_secret_refuses_to_start(tmp_path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AUTH_") and key != "SWITCHYARD_ENV"
    }
    env.update(
        SWITCHYARD_ENV="production",
        AUTH_DATABASE_URL=f"sqlite:///{tmp_path / 'auth.db'}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AUTH_SIGNING_KEY_SECRET" in result.stderr


def test_serve_stops_at_start_when_the_key_secret_is_wrong(database_url, make_settings) -> None:
    settings = make_settings(database_url)
    application = handlers_from(database_from(settings), settings)
    application.keys.active()
    application.close()
    wrong = make_settings(database_url, signing_key_secret="another-secret-" + "x" * 32)
    assert run_server(wrong) == 1


def test_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", "bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
