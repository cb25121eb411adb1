"""The test PgBouncer (switchyard_dev.pgbouncer) is prod's, in transaction pooling."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from switchyard_dev.pgbouncer import LOCAL_SETTINGS, prod_settings

pytestmark = pytest.mark.postgres


def test_it_runs_with_every_pool_setting_of_the_prod_overlay(pgbouncer):
    """What the running PgBouncer reports (SHOW CONFIG) is the prod overlay's
    pgbouncer.ini, save the local settings: a setting this PgBouncer ignores
    or reads differently fails here."""
    running = {str(row[0]): str(row[1]) for row in pgbouncer.admin("SHOW CONFIG")}
    expected = {k: v for k, v in prod_settings().items() if k not in LOCAL_SETTINGS}
    assert expected["pool_mode"] == "transaction"
    assert {k: running.get(k) for k in expected} == expected


def test_session_state_reaches_the_next_client(pgbouncer_database_url):
    """Transaction pooling, for real: a session-level SET stays on the server
    connection and the next client gets it. This is what the code must never
    rely on, and why the suites run through this PgBouncer."""
    engine = create_engine(
        pgbouncer_database_url,
    )
    with engine.connect() as first:
        first.exec_driver_sql("SET lock_timeout = '4321ms'")
        first.commit()
    engine.dispose()
    other = create_engine(pgbouncer_database_url)
    with other.connect() as second:
        assert second.execute(text("SHOW lock_timeout")).scalar_one() == "4321ms"
    other.dispose()


def test_a_setting_asked_for_at_connect_time_is_never_dropped_silently(pgbouncer_database_url):
    """`options=-c ...` in a database URL (a statement_timeout, a search_path)
    either holds or the connection is refused; PgBouncer told to ignore the
    `options` startup parameter would connect and run without it."""
    engine = create_engine(
        pgbouncer_database_url, connect_args={"options": "-c statement_timeout=1234"}
    )
    try:
        with engine.connect() as connection:
            outcome = str(connection.execute(text("SHOW statement_timeout")).scalar_one())
    except OperationalError as refused:
        outcome = f"refused: {refused.orig}"
    finally:
        engine.dispose()
    assert outcome == "1234ms" or (outcome.startswith("refused") and "options" in outcome)


def test_a_killed_database_keeps_no_server_connection(
    pgbouncer, create_postgres_database, postgres_admin_url
):
    """What `through_pgbouncer` does after each test: the session's many test
    databases never pile up idle server connections (min_pool_size each)."""
    direct = create_postgres_database("pgbouncer")
    name = make_url(direct).database
    engine = create_engine(pgbouncer.url(direct))
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()
    admin = create_engine(postgres_admin_url)

    def server_connections() -> int:
        with admin.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                ).scalar_one()
            )

    assert server_connections() >= 1
    pgbouncer.admin(f"KILL {name}")
    deadline = time.monotonic() + 10
    while server_connections() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_connections() == 0
    admin.dispose()
