"""Migrations from an empty database, on PostgreSQL and SQLite, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from alembic import command
from alembic.config import Config
from grpc_health.v1 import health_pb2, health_pb2_grpc
from profile_service.entrypoints.app import MIGRATIONS_DIR
from sqlalchemy import create_engine, inspect, text
from switchyard_dev.ports import free_port
from switchyard_kit import upgrade_database


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def tables(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_down_and_up_again(database_url: str) -> None:
    upgrade_database(database_url, MIGRATIONS_DIR)
    assert {"profiles", "alembic_version"} <= tables(database_url)
    engine = create_engine(database_url)
    try:
        columns = {column["name"] for column in inspect(engine).get_columns("profiles")}
        assert columns == {
            "user_id",
            "display_name",
            "bio",
            "avatar_url",
            "locale",
            "preferences",
            "create_time",
            "update_time",
        }
        assert inspect(engine).get_pk_constraint("profiles")["constrained_columns"] == ["user_id"]
        with engine.connect() as connection:
            head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert head == "0001"
    finally:
        engine.dispose()

    upgrade_database(database_url, MIGRATIONS_DIR)  # a second run changes nothing
    command.downgrade(alembic_config(database_url), "base")
    assert "profiles" not in tables(database_url)
    upgrade_database(database_url, MIGRATIONS_DIR)
    assert "profiles" in tables(database_url)


@pytest.mark.timeout(60)
def test_cli_migrates_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SWITCHYARD_DATA_DIR": str(tmp_path),
        "PROFILE_PORT": str(port),
        "PROFILE_GRACE_SECONDS": "1",
    }
    for name in ("PROFILE_DATABASE_URL", "PROFILE_DATABASE_READ_URL", "REDIS_URL"):
        env.pop(name, None)
    migrate = subprocess.run(
        [sys.executable, "-m", "profile_service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "profiles" in tables(f"sqlite:///{tmp_path}/profile.db")

    process = subprocess.Popen(
        [sys.executable, "-m", "profile_service"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 30
            while True:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "the server never became ready"
                time.sleep(0.1)
        process.terminate()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_cli_reports_bad_settings(tmp_path: Path) -> None:
    env = {**os.environ, "SWITCHYARD_DATA_DIR": str(tmp_path), "PROFILE_PORT": "not-a-port"}
    result = subprocess.run(
        [sys.executable, "-m", "profile_service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "PROFILE_PORT" in result.stderr
