"""A private PostgreSQL 15 primary with a streaming replica, for tests.

`initdb` + `pg_basebackup -R`, run as the `postgres` OS user (PostgreSQL
refuses root) on free loopback ports, with data and sockets in temporary
folders that user owns; torn down at the end of the session. Registered as a
pytest plugin beside switchyard_dev.testing by the root conftest.py.

Fixtures:

- `replicated_postgres` (session): the running pair, a `ReplicatedPostgres`;
- `replication` (per test): the same pair, put back as it was after the test
  (replica running, no apply delay), so a test may stop it or delay it;
- `create_replicated_database`: a factory like `create_postgres_database`
  that returns `(primary_url, replica_url)` of a fresh database, dropped at
  the end.

Binaries: TEST_POSTGRES_BIN (default /usr/lib/postgresql/15/bin). When they
are missing the tests skip on a laptop and fail under CI, as elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from switchyard_dev.ports import free_port as _free_port
from switchyard_dev.testing import unavailable

DEFAULT_POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
OS_USER = "postgres"
# Waits for start, stop and replay; generous because the machine is shared.
START_TIMEOUT_SECONDS = 60

_SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
max_connections = 100
shared_buffers = 32MB
fsync = off
full_page_writes = off
synchronous_commit = on
wal_level = replica
max_wal_senders = 4
hot_standby = on
hot_standby_feedback = on
# A standby query is cancelled rather than stall replay forever.
max_standby_streaming_delay = 5s
logging_collector = off
"""

_HBA = """
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


def _owned_temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    account = pwd.getpwnam(OS_USER)
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o700)
    return path


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = [] if os.geteuid() != 0 else ["runuser", "-u", OS_USER, "--"]
    return subprocess.run(  # noqa: S603 - fixed binaries, arguments of our own
        [*prefix, *command], check=True, capture_output=True, text=True, timeout=120
    )


@dataclass
class PostgresServer:
    """One server of the pair: its data folder, port and log."""

    name: str
    bin_dir: Path
    data_dir: Path
    port: int
    log_file: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        try:
            self._pg_ctl_start()
        except subprocess.CalledProcessError as exc:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(f"{self.name} did not start: {exc.stderr}\n{log}") from exc

    def _pg_ctl_start(self) -> None:
        _as_postgres(
            str(self.bin_dir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {self.port}",
        )

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(
            str(self.bin_dir / "pg_ctl"),
            "stop",
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-m",
            mode,
            "-D",
            str(self.data_dir),
        )

    def running(self) -> bool:
        try:
            _as_postgres(str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir))
        except subprocess.CalledProcessError:
            return False
        return True


@dataclass
class ReplicatedPostgres:
    """A primary and its streaming replica (hot standby), both on loopback.

    Example::

        pair.set_apply_delay(3)        # the replica applies commits 3 s late
        pair.stop_replica(); pair.start_replica()
        pair.wait_for_replay()         # the replica has replayed everything so far
    """

    primary: PostgresServer
    replica: PostgresServer
    _engines: dict[str, Engine] = field(default_factory=dict)

    def engine(self, server: PostgresServer) -> Engine:
        """An autocommit engine on `server`'s maintenance database."""
        if server.name not in self._engines:
            self._engines[server.name] = create_engine(
                server.url(),
                isolation_level="AUTOCOMMIT",
                pool_pre_ping=True,
                connect_args={"connect_timeout": 3},
            )
        return self._engines[server.name]

    def set_apply_delay(self, seconds: float) -> None:
        """`recovery_min_apply_delay` on the replica (0 turns it off); reloaded at once.

        The delay holds back replay of commit records; WAL still streams in."""
        with self.engine(self.replica).connect() as connection:
            connection.execute(
                text(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(seconds * 1000)}ms'")
            )
            connection.execute(text("SELECT pg_reload_conf()"))
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            wanted = f"{int(seconds * 1000)}ms" if seconds else "0"
            while time.monotonic() < deadline:
                shown = connection.execute(text("SHOW recovery_min_apply_delay")).scalar_one()
                if _milliseconds(str(shown)) == _milliseconds(wanted):
                    return
                time.sleep(0.05)
        raise TimeoutError("the replica did not take the new recovery_min_apply_delay")

    def stop_replica(self) -> None:
        self._engines.pop(self.replica.name, None)
        self.replica.stop("immediate")

    def start_replica(self) -> None:
        if not self.replica.running():
            self.replica.start()

    def primary_lsn(self) -> str:
        with self.engine(self.primary).connect() as connection:
            return str(connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())

    def wait_for_replay(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> None:
        """Block until the replica has replayed the primary's current WAL position."""
        target = self.primary_lsn()
        deadline = time.monotonic() + timeout_seconds
        with self.engine(self.replica).connect() as connection:
            while time.monotonic() < deadline:
                caught_up = connection.execute(
                    text("SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)"),
                    {"target": target},
                ).scalar_one()
                if caught_up:
                    return
                time.sleep(0.05)
        raise TimeoutError(f"the replica did not replay {target} in {timeout_seconds} s")

    def reset(self) -> None:
        """Back to the state a test expects: replica running, no delay, caught up."""
        self.start_replica()
        self.set_apply_delay(0)
        self.wait_for_replay()

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()


def _milliseconds(value: str) -> int:
    units = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
    for unit in sorted(units, key=len, reverse=True):
        if value.endswith(unit) and value[: -len(unit)].strip().isdigit():
            return int(value[: -len(unit)]) * units[unit]
    return int(value) if value.isdigit() else -1


def start_replicated_postgres(bin_dir: Path, root: Path) -> ReplicatedPostgres:
    """initdb a primary under `root`, start it, clone a standby with pg_basebackup -R."""
    sockets = root / "sockets"
    sockets.mkdir()
    account = pwd.getpwnam(OS_USER)
    os.chown(sockets, account.pw_uid, account.pw_gid)
    primary = PostgresServer(
        "primary", bin_dir, root / "primary", _free_port(), root / "primary.log"
    )
    _as_postgres(
        str(bin_dir / "initdb"),
        "-D",
        str(primary.data_dir),
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "--encoding=UTF8",
        "--locale=C",
    )
    settings = _SERVER_SETTINGS.format(socket_dir=sockets)
    _append_as_postgres(primary.data_dir / "postgresql.conf", settings)
    _write_as_postgres(primary.data_dir / "pg_hba.conf", _HBA)
    primary.start()
    replica = PostgresServer(
        "replica", bin_dir, root / "replica", _free_port(), root / "replica.log"
    )
    _as_postgres(
        str(bin_dir / "pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        str(replica.data_dir),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "--no-sync",
    )
    replica.start()
    pair = ReplicatedPostgres(primary, replica)
    pair.wait_for_replay()
    return pair


def _write_as_postgres(path: Path, content: str) -> None:
    path.write_text(content)
    account = pwd.getpwnam(OS_USER)
    os.chown(path, account.pw_uid, account.pw_gid)


def _append_as_postgres(path: Path, content: str) -> None:
    with path.open("a") as handle:
        handle.write(content)


@pytest.fixture(scope="session")
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """A private primary + streaming replica for the whole session (a few seconds to start)."""
    bin_dir = Path(os.environ.get("TEST_POSTGRES_BIN", DEFAULT_POSTGRES_BIN))
    if not (bin_dir / "initdb").exists() or shutil.which("runuser") is None:
        unavailable("PostgreSQL binaries", FileNotFoundError(str(bin_dir / "initdb")))
    try:
        pwd.getpwnam(OS_USER)
    except KeyError as exc:
        unavailable(f"the {OS_USER} OS user", exc)
    root = _owned_temp_dir("switchyard-replication-")
    pair: ReplicatedPostgres | None = None
    try:
        pair = start_replicated_postgres(bin_dir, root)
        yield pair
    finally:
        if pair is not None:
            pair.dispose()
        for server in (root / "replica", root / "primary"):
            if (server / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.SubprocessError):
                    _as_postgres(
                        str(bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(server)
                    )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def replication(replicated_postgres: ReplicatedPostgres) -> Iterator[ReplicatedPostgres]:
    """The session's pair for one test, put back afterwards (running, no delay)."""
    replicated_postgres.reset()
    yield replicated_postgres
    replicated_postgres.reset()


@pytest.fixture(scope="session")
def create_replicated_database(
    replicated_postgres: ReplicatedPostgres,
) -> Iterator[Callable[[str], tuple[str, str]]]:
    """A factory: `create_replicated_database("profile")` makes `test_profile_<random>`
    on the primary, waits until the replica has it, and returns
    `(primary_url, replica_url)`; every such database is dropped at the end."""
    created: list[str] = []

    def create(label: str) -> tuple[str, str]:
        name = f"test_{label}_{uuid.uuid4().hex[:12]}"
        with replicated_postgres.engine(replicated_postgres.primary).connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        replicated_postgres.wait_for_replay()
        return replicated_postgres.primary.url(name), replicated_postgres.replica.url(name)

    yield create
    with replicated_postgres.engine(replicated_postgres.primary).connect() as connection:
        for name in created:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
