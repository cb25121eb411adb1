"""Pytest fixtures: a real PgBouncer, in prod's transaction pooling, in front
of the test PostgreSQL.

Registered as a pytest plugin by the root conftest.py, like
switchyard_dev.testing. The PgBouncer runs with the prod overlay's own
pgbouncer.ini (k8s/overlays/prod/pgbouncer.ini, the ConfigMap
pgbouncer-config): every pool setting is prod's, only `LOCAL_SETTINGS` (where
it listens, how clients authenticate, TLS to the server, where it logs) are
the test's. One PgBouncer per test session (per xdist worker), on a free
loopback port, as the `postgres` OS user when the tests run as root
(PgBouncer refuses root), its config and log in a temporary folder removed
afterwards.

Versions: the tests run the distribution's package (Debian bookworm: 1.18),
prod the image's 1.24. PgBouncer refuses a setting it does not know, so the
ini holds only settings both understand. The one difference that matters
runs the safe way: 1.21+ can keep protocol-level prepared statements across
transactions (max_prepared_statements), 1.18 cannot, so code that relied on
them fails here first.

Example::

    def test_through_pgbouncer(pgbouncer_database_url):
        engine = create_engine(pgbouncer_database_url)
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from switchyard_kit import upgrade_database

from switchyard_dev.ports import free_port
from switchyard_dev.testing import unavailable

ROOT = Path(__file__).resolve().parents[4]
PROD_INI = ROOT / "k8s" / "overlays" / "prod" / "pgbouncer.ini"
# The settings a test PgBouncer sets itself; every other one is prod's.
LOCAL_SETTINGS = (
    "listen_addr",  # loopback only, on a free port
    "listen_port",
    "unix_socket_dir",
    "auth_type",  # the test server trusts loopback clients; prod checks SCRAM
    "auth_file",
    "admin_users",  # the tests read SHOW CONFIG / KILL through the admin console
    "server_tls_sslmode",  # the test server has no TLS
    "logfile",
    "pidfile",
)
# Servers that refuse root run as this account (it owns the temporary folder).
SERVER_ACCOUNT = "postgres"
STARTUP_SECONDS = 15.0
ATTEMPTS = 3


def prod_settings() -> dict[str, str]:
    """The [pgbouncer] section of the prod overlay's pgbouncer.ini."""
    # The %include of the Secret's databases list is prod's; configparser reads
    # only sections, so it goes.
    lines = [line for line in PROD_INI.read_text().splitlines() if not line.startswith("%include")]
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    parser.read_string("\n".join(lines))
    return dict(parser["pgbouncer"])


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


class PgBouncer:
    """One PgBouncer process in front of `server_url`'s PostgreSQL; every
    database of that server is reachable through it by its own name."""

    def __init__(self, binary: str, server_url: str) -> None:
        self.binary = binary
        self.server = make_url(server_url)
        self.folder = Path(tempfile.mkdtemp(prefix="switchyard-pgbouncer-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._account = pwd.getpwnam(SERVER_ACCOUNT) if os.geteuid() == 0 else None

    @property
    def log(self) -> Path:
        return self.folder / "pgbouncer.log"

    def settings(self) -> dict[str, str]:
        settings = prod_settings()
        settings.update(
            listen_addr="127.0.0.1",
            listen_port=str(self.port),
            unix_socket_dir="",
            auth_type="trust",
            auth_file=str(self.folder / "userlist.txt"),
            admin_users=str(self.server.username),
            server_tls_sslmode="disable",
            logfile=str(self.log),
            pidfile=str(self.folder / "pgbouncer.pid"),
        )
        return settings

    def _write_config(self) -> Path:
        parser = configparser.ConfigParser(interpolation=None)
        host = self.server.host or "127.0.0.1"
        # "*": a fallback entry, so each freshly created test database is
        # reachable without a config reload.
        parser["databases"] = {"*": f"host={host} port={self.server.port or 5432}"}
        parser["pgbouncer"] = self.settings()
        config = io.StringIO()
        parser.write(config)
        path = self.folder / "pgbouncer.ini"
        path.write_text(config.getvalue())
        # trust still needs the user listed.
        (self.folder / "userlist.txt").write_text(f'"{self.server.username}" ""\n')
        if self._account is not None:
            for owned in (self.folder, *self.folder.iterdir()):
                os.chown(owned, self._account.pw_uid, self._account.pw_gid)
        return path

    def start(self) -> None:
        """Start on a free port; a port taken in between gets another try."""
        for _ in range(ATTEMPTS):
            self.port = free_port()
            if self._launch():
                return
        raise RuntimeError(f"PgBouncer did not start; its log:\n{self.log_tail()}")

    def restart(self) -> None:
        """Stop (every client connection breaks) and start again on the same
        port, as a PgBouncer pod replaced behind its Service."""
        self.stop()
        if not self._launch():
            raise RuntimeError(f"PgBouncer did not restart; its log:\n{self.log_tail()}")

    def _launch(self) -> bool:
        config = self._write_config()
        account = self._account
        self._process = subprocess.Popen(  # noqa: S603 - our own binary and config
            [self.binary, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
        if self._wait_until_listening():
            return True
        self.stop()
        return False

    def _wait_until_listening(self) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def url(self, direct_url: str) -> str:
        """`direct_url`'s database, through this PgBouncer."""
        return (
            make_url(direct_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def admin(self, command: str) -> list[tuple[object, ...]]:
        """A command of the admin console (SHOW CONFIG, KILL db, ...)."""
        # The console speaks no transactions (no BEGIN): psycopg2 in
        # autocommit, not SQLAlchemy, whose first connect runs queries.
        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.server.username,
            dbname="pgbouncer",
            connect_timeout=3,
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(command)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(postgres_admin_url: str) -> Iterator[PgBouncer]:
    """A running PgBouncer (prod's pgbouncer.ini) in front of the test PostgreSQL."""
    binary = pgbouncer_binary()
    if binary is None:
        unavailable("PgBouncer", FileNotFoundError("no pgbouncer binary on PATH or in /usr/sbin"))
        raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises
    bouncer = PgBouncer(binary, postgres_admin_url)
    try:
        bouncer.start()
        # A first query through it: the server behind it answers.
        engine = create_engine(bouncer.url(postgres_admin_url))
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        bouncer.remove()
        unavailable(f"PgBouncer (log: {bouncer.log_tail()})", exc)
    yield bouncer
    bouncer.remove()


@pytest.fixture
def through_pgbouncer(pgbouncer: PgBouncer) -> Iterator[Callable[[str], str]]:
    """`through_pgbouncer(direct_url)`: the same database through PgBouncer.
    Its server connections are closed when the test ends (KILL), so the pools
    of a session's many test databases never hold the server's connections."""
    databases: list[str] = []

    def through(direct_url: str) -> str:
        databases.append(str(make_url(direct_url).database))
        return pgbouncer.url(direct_url)

    yield through
    for database in databases:
        pgbouncer.admin(f"KILL {database}")


@pytest.fixture
def create_pgbouncer_database(
    create_postgres_database: Callable[[str], str], through_pgbouncer: Callable[[str], str]
) -> Callable[[str, Path], str]:
    """`create_pgbouncer_database("auth", MIGRATIONS_DIR)`: a fresh database,
    migrated directly (as prod's migrate init containers do: migration-url),
    and its URL through PgBouncer, which the service is given."""

    def create(label: str, migrations_dir: Path) -> str:
        direct = create_postgres_database(label)
        upgrade_database(direct, migrations_dir)
        return through_pgbouncer(direct)

    return create


@pytest.fixture
def pgbouncer_database_url(
    create_postgres_database: Callable[[str], str], through_pgbouncer: Callable[[str], str]
) -> str:
    """A freshly created, empty database, through PgBouncer."""
    return through_pgbouncer(create_postgres_database("pgbouncer"))
