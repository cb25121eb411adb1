"""PostgreSQL down behind PgBouncer (prod's pgbouncer.ini, switchyard_dev.pgbouncer):
a service learns it within its longest request budget, and heals when the
database is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url
from switchyard_dev.pgbouncer import PgBouncer, pgbouncer_binary, prod_settings
from switchyard_dev.testing import unavailable
from switchyard_kit import Database

from faults.proxy import TcpProxy

pytestmark = pytest.mark.postgres
# PgBouncer's own default, which a query on a pooled connection waited out.
PGBOUNCER_DEFAULT_QUERY_WAIT_SECONDS = 120


@pytest.fixture
def database_behind_a_cut(postgres_admin_url: str) -> Iterator[tuple[Database, TcpProxy]]:
    """A Database through a PgBouncer whose PostgreSQL is behind a proxy the
    test can cut (the server "goes down")."""
    binary = pgbouncer_binary()
    if binary is None:
        unavailable("PgBouncer", FileNotFoundError("no pgbouncer binary"))
    server = make_url(postgres_admin_url)
    proxy = TcpProxy((server.host or "127.0.0.1", server.port or 5432)).start()
    bouncer = PgBouncer(str(binary), server.set(port=proxy.port).render_as_string(False))
    bouncer.start()
    database = Database(bouncer.url(postgres_admin_url))
    yield database, proxy
    database.dispose()
    bouncer.remove()
    proxy.stop()


def test_a_database_down_behind_pgbouncer_fails_readiness_within_the_query_wait(
    database_behind_a_cut: tuple[Database, TcpProxy],
) -> None:
    """Readiness (Database.ping) on a pooled connection: PgBouncer holds the
    query until query_wait_timeout, which the prod ini sets to the longest
    request budget; its default kept it (and every request) for two minutes."""
    database, proxy = database_behind_a_cut
    assert database.ping()
    proxy.cut()
    began = time.monotonic()
    assert not database.ping()
    waited = time.monotonic() - began
    query_wait = float(prod_settings()["query_wait_timeout"])
    # Generous for a loaded machine, far below the default it replaced.
    assert waited < min(query_wait + 30, PGBOUNCER_DEFAULT_QUERY_WAIT_SECONDS / 2), waited
    proxy.restore()
    deadline = time.monotonic() + 60
    while not database.ping():
        # PgBouncer refuses new logins for server_login_retry after a failed one.
        assert time.monotonic() < deadline, "not back within 60 s of the database"
        time.sleep(0.5)
