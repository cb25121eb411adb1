"""The migrations build the schema the code expects, from empty, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from auth_service.adapters.tables import metadata
from auth_service.entrypoints.app import MIGRATIONS_DIR
from sqlalchemy import create_engine, inspect
from switchyard_kit import upgrade_database
from switchyard_kit._migrations import alembic_config

TABLES = {"users", "sessions", "refresh_tokens", "signing_keys", "audit_events", "outbox"}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_matches_the_tables(empty_database_url: str) -> None:
    assert _tables(empty_database_url) == set()
    upgrade_database(empty_database_url, MIGRATIONS_DIR)
    assert _tables(empty_database_url) == {*TABLES, "alembic_version"}
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_is_repeatable_and_reversible(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, MIGRATIONS_DIR)
    upgrade_database(empty_database_url, MIGRATIONS_DIR)
    command.downgrade(alembic_config(empty_database_url, MIGRATIONS_DIR), "base")
    assert _tables(empty_database_url) == {"alembic_version"}
    upgrade_database(empty_database_url, MIGRATIONS_DIR)
    assert _tables(empty_database_url) >= TABLES


def test_migrate_command(empty_database_url: str) -> None:
    env = {**os.environ, "AUTH_DATABASE_URL": empty_database_url, "SWITCHYARD_ENV": "development"}
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _tables(empty_database_url) >= TABLES
