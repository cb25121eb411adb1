"""`make bench`: the platform beside its peers, in one run, on this machine.

Starts a private Redis and the whole platform as `make run` does (gunicorn
gateway, every gRPC service, relays and workers) on fresh PostgreSQL databases
seeded straight into each service's schema (bench/seed.py; the
recommendation model with a catalogue of 200 bought items, so every user has
a full list to cache), plus: a second
profile service whose cache entries live 1 ms (every read misses) behind a
second gateway (scenario 4), a second payment service on 4 shards (4 more
databases, the same wallets seeded each on the shard of its user's slot)
behind a third gateway (scenario 5s: the payment write of scenario 5 on 4
shards), the Flask ceiling and the monolith peer (bench/peers/, gunicorn with
the gateway's worker settings). On one machine 5s against 5 shows what routing
by user costs (the slot check in every transaction, more connections), not
what sharding buys: the 4 shards share one PostgreSQL and the same 2 cores.

Then runs the scenarios interleaved, round after round (1, 2, 3 ... 8, 1, 2
...), so machine drift cancels in the ratios. Each scenario run is:

- drain: the event pipeline is waited for until it is empty (no unsent row in
  the relayed outboxes, no undelivered or unacknowledged entry in any stream
  consumer group; at most 120 s, else the bench fails), so the workers' and
  PostgreSQL's CPU of one scenario's events (scenario 5's payments) is not
  counted in the next one's row; the wait and the backlog it started from are
  in each run's JSON (`extra.drain`);
- warm-up (read scenarios), after the drain: one request per logged-in user
  (every token once), then 2 s of the same load, unmeasured, so caches are as
  the scenario says (cached profiles live 60 s, recommendations 120 s; a round
  takes minutes; scenario 5's payments drop their buyers' recommendations):
  scenario 6 measures cached recommendations;
- throughput: wrk (closed model, `--connections`, 2 threads) for `--seconds`;
  requests/s, errors by status, and the CPU seconds each process tier spent
  in that window, read from /proc/<pid>/stat (utime + stime), per request;
- latency: bench/openload.py (open model, constant rate: half the throughput
  just measured) for `--seconds`; p50/p99/p99.9 from each request's due time,
  so queueing is not hidden by coordinated omission.

Scenario 8 (overload) is wrk with 512 connections on scenario 3; its
percentiles are of the accepted (2xx) requests alone, each timed by the wrk
script from its send to its answer (bench/wrk/switchyard.lua, BENCH_ACCEPTED),
compared with scenario 3's p99 at a low constant rate (100 requests/s,
"unloaded").

Prints one table and writes bench/results/<UTC time>.json (+ latest.json and
latest.md) with the machine description.

    .venv/bin/python bench/bench.py            # ~12 minutes: 100k users, 1M ledger entries
    .venv/bin/python bench/bench.py --quick    # ~3 minutes smoke run: 10k users, 100k entries

Needs PostgreSQL (BENCH_POSTGRES_URL, default postgres@127.0.0.1:5432; fresh
databases are created and dropped), `redis-server` on PATH, and wrk (installed
with apt-get when missing and allowed). Only 127.0.0.1 traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from prometheus_client import REGISTRY
from redis import Redis
from sqlalchemy import create_engine, text
from switchyard_dev.launcher import (
    SERVICES,
    Component,
    Platform,
    PlatformConfig,
    platform_components,
)
from switchyard_dev.ports import free_port
from switchyard_kit import watch_outbox_backlog, watch_stream_lag

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from payment_service.domain.shards import SlotMap  # noqa: E402
from seed import (  # noqa: E402 - after the path is set
    BENCH_EMAIL,
    BENCH_PASSWORD,
    seed,
    seed_payments,
    seed_recommendations,
    user_ids,
)

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAYMENT_BODY = json.dumps(
    {
        "amount": 250,
        "currency": "EUR",
        "merchant_id": "flash-sale",
        "items": [{"sku": "sku-0001", "quantity": 1, "unit_amount": 250}],
    },
    separators=(",", ":"),
)
TIERS = (
    "gateway",
    "auth",
    "profile",
    "payment",
    "recommendation",
    "workers",
    "ceiling",
    "monolith",
    "postgres",
    "redis",
)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    port_name: str
    path: str
    method: str = "GET"
    body: str = ""
    fresh_keys: bool = False
    connections: int = 32
    latency_run: bool = True
    # Percentiles of the 2xx answers alone (wrk's own histogram counts every
    # answer, fast 503 sheds too).
    time_accepted: bool = False
    kind: str = "read"  # read | write | ceiling


SCENARIOS = (
    Scenario("1", "ceiling: Flask fixed JSON", "ceiling", "/ping", kind="ceiling"),
    Scenario("2r", "monolith peer: profile read", "monolith", "/v1/profiles/me"),
    Scenario(
        "2w",
        "monolith peer: payment write",
        "monolith",
        "/v1/payments",
        "POST",
        PAYMENT_BODY,
        fresh_keys=True,
        kind="write",
    ),
    Scenario("3", "profile read, cache warm", "gateway", "/v1/profiles/me"),
    Scenario("4", "profile read, cache cold", "gateway-cold", "/v1/profiles/me"),
    Scenario(
        "5",
        "payment write",
        "gateway",
        "/v1/payments",
        "POST",
        PAYMENT_BODY,
        fresh_keys=True,
        kind="write",
    ),
    Scenario(
        "5s",
        "payment write, 4 shards",
        "gateway-sharded",
        "/v1/payments",
        "POST",
        PAYMENT_BODY,
        fresh_keys=True,
        kind="write",
    ),
    Scenario("6", "recommendations", "gateway", "/v1/recommendations"),
    Scenario("7", "/v1/me fan-out", "gateway", "/v1/me"),
    Scenario(
        "8",
        "overload: 512 connections on 3",
        "gateway",
        "/v1/profiles/me",
        connections=512,
        latency_run=False,
        time_accepted=True,
    ),
)


# --- CPU accounting from /proc -------------------------------------------------


def process_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command name, CPU ticks: utime + stime)."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
    return table


def descendants(table: dict[int, tuple[int, str, int]], roots: Iterable[int]) -> set[int]:
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, (parent, _, _) in table.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    return found & set(table)


class CpuMeter:
    """CPU seconds per tier between two snapshots."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots

    def snapshot(self) -> dict[str, dict[int, int]]:
        table = process_table()
        tiers: dict[str, dict[int, int]] = {}
        for tier, pids in self.roots.items():
            tiers[tier] = {pid: table[pid][2] for pid in descendants(table, pids)}
        tiers["postgres"] = {
            pid: ticks for pid, (_, name, ticks) in table.items() if name.startswith("postgres")
        }
        tiers["redis"] = {
            pid: ticks for pid, (_, name, ticks) in table.items() if name == "redis-server"
        }
        return tiers

    @staticmethod
    def seconds(
        before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]
    ) -> dict[str, float]:
        spent: dict[str, float] = {}
        for tier, now in after.items():
            then = before.get(tier, {})
            ticks = sum(value - then.get(pid, 0) for pid, value in now.items())
            spent[tier] = max(ticks, 0) / CLK_TCK
        return spent


# --- set-up ----------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk is missing; installing the Debian package", flush=True)
    apt = ["apt-get", "install", "-y", "-q", "wrk"]
    if os.geteuid() != 0:
        apt = ["sudo", "-n", *apt]
    subprocess.run(apt, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    return found


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench: redis-server is not on PATH (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - the system's redis-server
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    raise SystemExit("bench: redis-server did not start")


def create_databases(admin_url: str) -> dict[str, str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    urls: dict[str, str] = {}
    suffix = uuid.uuid4().hex[:8]
    with admin.connect() as connection:
        for name in SERVICES:
            database = f"bench_{name}_{suffix}"
            connection.execute(text(f'CREATE DATABASE "{database}"'))
            urls[name] = admin_url.rsplit("/", 1)[0] + f"/{database}"
    admin.dispose()
    return urls


PAYMENT_SHARDS = 4


def create_shard_databases(admin_url: str) -> dict[str, str]:
    """{shard name: URL} of PAYMENT_SHARDS fresh payment databases."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    urls: dict[str, str] = {}
    suffix = uuid.uuid4().hex[:8]
    with admin.connect() as connection:
        for index in range(PAYMENT_SHARDS):
            database = f"bench_payment_s{index}_{suffix}"
            connection.execute(text(f'CREATE DATABASE "{database}"'))
            urls[f"s{index}"] = admin_url.rsplit("/", 1)[0] + f"/{database}"
    admin.dispose()
    return urls


def seed_shards(shard_urls: dict[str, str], users: int, top_ups_per_user: int) -> None:
    """The wallets `seed` made, each on the shard of its user's slot."""
    slot_map = SlotMap.even(list(shard_urls))
    ids = user_ids(users)
    for name, url in shard_urls.items():
        seed_payments(url, [i for i in ids if slot_map.shard_of(i) == name], top_ups_per_user)


def drop_databases(admin_url: str, urls: Iterable[str]) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for url in urls:
            database = url.rsplit("/", 1)[1]
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def platform_env(redis_port: int, urls: dict[str, str]) -> dict[str, str]:
    """The settings every bench platform runs with: quiet logs, no tracing,
    the private Redis, each service's database, cheap password hashing."""
    return {
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST_KIB": "8192",
        "AUTH_ACCESS_TOKEN_TTL_SECONDS": "7200",
        # Every bench login comes from 127.0.0.1: the gateway's per-address
        # login limit would let the 1,000 tokens in at a few a minute.
        "GATEWAY_RATE_LIMIT_LOGIN": "100000/minute",
        "OTEL_SDK_DISABLED": "true",
        **{f"{name.upper()}_DATABASE_URL": url for name, url in urls.items()},
    }


def migrate(env: dict[str, str]) -> None:
    for name in SERVICES:
        subprocess.run(  # noqa: S603 - our own interpreter and modules
            [sys.executable, "-m", f"{name}_service", "migrate"], env=env, check=True
        )


def login_tokens(gateway: str, count: int) -> list[str]:
    def login(n: int) -> str:
        with httpx.Client(base_url=gateway, timeout=30) as client:
            for _ in range(20):
                answer = client.post(
                    "/v1/auth/login",
                    json={"email": BENCH_EMAIL.format(n=n), "password": BENCH_PASSWORD},
                )
                # Password hashing is shed (429, or 503 from the gateway's concurrency limit)
                # when the machine is busy: wait as told.
                if answer.status_code not in (429, 503):
                    break
                time.sleep(float(answer.headers.get("Retry-After", "1")))
            answer.raise_for_status()
            return str(answer.json()["access_token"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(login, range(count)))


# The bench's processes share one PostgreSQL and its 100 connections (Debian's
# default), and a pool keeps what it once opened (10 by default): every
# service, the cold profile service, four payment shards and the monolith
# peer's 2 x 8 threads on two databases came to 103 at once, and a run failed
# with "too many clients". So the pools the measured paths do not use keep
# fewer: a loop (relay, worker) uses one connection at a time (plus the
# backlog gauge's own); the profile and recommendation services read from
# their caches in every scenario but 4 (which has a cold profile service of
# its own, at the default), the database only while warming up; a shard of
# four takes a quarter of the payment calls.
LOOP_POOL = {"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "2"}
CACHED_POOL = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "12"}
SHARD_POOL = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "4"}
POOLS = {
    "auth-relay": ("auth", LOOP_POOL),
    "relay": ("payment", LOOP_POOL),
    "profile-worker": ("profile", LOOP_POOL),
    "recommendation-worker": ("recommendation", LOOP_POOL),
    "profile": ("profile", CACHED_POOL),
    "recommendation": ("recommendation", CACHED_POOL),
}


def pool_env(service: str, sizes: dict[str, str]) -> dict[str, str]:
    """`sizes` as `service`'s settings (DB_POOL_SIZE -> PAYMENT_DB_POOL_SIZE)."""
    return {f"{service.upper()}_{name}": size for name, size in sizes.items()}


def fit_connections(components: list[Component]) -> list[Component]:
    """`components` with the pools of POOLS."""
    for component in components:
        if component.name in POOLS:
            component.env = {**component.env, **pool_env(*POOLS[component.name])}
    return components


def service_component(name: str, service: str, port: int, env: dict[str, str]) -> Component:
    """One more instance of `service`'s gRPC server on `port`, with `env`."""
    return Component(
        name=name,
        argv=[sys.executable, "-m", f"{service}_service", "serve"],
        env={**env, f"{service.upper()}_PORT": str(port)},
        health_grpc=f"127.0.0.1:{port}",
    )


def gateway_component(name: str, port: int, env: dict[str, str]) -> Component:
    """One more gateway (gunicorn, as `make run` starts it) on `port`, with `env`."""
    return Component(
        name=name,
        argv=[sys.executable, "-m", "gateway"],
        env={**env, "GATEWAY_PORT": str(port)},
        health_http=f"http://127.0.0.1:{port}/healthz",
    )


def gunicorn_peer(name: str, app: str, port: int, env: dict[str, str]) -> Component:
    return Component(
        name=name,
        argv=[sys.executable, "-m", "gunicorn", "--config", "python:gunicorn_peer", app],
        env={
            **env,
            "PEER_PORT": str(port),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(BENCH / "peers"), env.get("PYTHONPATH", "")])
            ),
        },
        health_http=f"http://127.0.0.1:{port}/healthz",
    )


# --- load ----------------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    round: int
    wrk: dict[str, Any]
    cpu_seconds: dict[str, float]
    latency: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_wrk(
    wrk: str, scenario: Scenario, port: int, seconds: float, tokens_file: Path
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_PATH": scenario.path,
        "BENCH_TOKENS": str(tokens_file) if scenario.kind != "ceiling" else "",
        "BENCH_KEYS": "1" if scenario.fresh_keys else "0",
        "BENCH_NONCE": uuid.uuid4().hex[:12],
        "BENCH_ACCEPTED": "1" if scenario.time_accepted else "0",
    }
    if scenario.body:
        env["BENCH_BODY"] = scenario.body
    argv = [
        wrk,
        "-t2",
        f"-c{scenario.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "wrk" / "switchyard.lua"),
        f"http://127.0.0.1:{port}{scenario.path}",
    ]
    output = subprocess.run(  # noqa: S603 - wrk against loopback
        argv, env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(row for row in output.splitlines() if row.startswith("BENCH_RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    return result


def touch_every_user(scenario: Scenario, port: int, tokens: list[str]) -> dict[str, int]:
    """One request per token (the scenario's own), so every user's cache entry
    is there before a read scenario is measured: wrk's short warm-up reaches
    only the tokens its connections happen to rotate through."""

    def touch(chunk: list[str]) -> list[int]:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            return [
                client.get(scenario.path, headers={"Authorization": f"Bearer {token}"}).status_code
                for token in chunk
            ]

    chunks = [tokens[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        statuses = [status for chunk in pool.map(touch, chunks) for status in chunk]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def run_open(
    scenario: Scenario, port: int, rate: float, seconds: float, tokens_file: Path
) -> dict[str, Any]:
    argv = [
        sys.executable,
        str(BENCH / "openload.py"),
        "--port",
        str(port),
        "--path",
        scenario.path,
        "--method",
        scenario.method,
        "--rate",
        f"{rate:.1f}",
        "--duration",
        str(seconds),
    ]
    if scenario.kind != "ceiling":
        argv += ["--tokens", str(tokens_file)]
    if scenario.body:
        argv += ["--body", scenario.body]
    if scenario.fresh_keys:
        argv.append("--fresh-keys")
    output = subprocess.run(  # noqa: S603 - our own generator against loopback
        argv, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


# --- the event pipeline: drained before every measured run -------------------------


class EventPipeline:
    """The relayed outboxes and every stream consumer group, read through the
    kit's own gauges (`watch_outbox_backlog`, `watch_stream_lag`: what the
    services report on /metrics), so a scenario's CPU columns hold no work left
    over from the one before it.

    Outboxes: auth's and the payment service's (each relayed to Redis). The
    4-shard payment service's outboxes are left out: the bench starts it
    without a relay, so they only grow and never drain (scenario 5s measures
    the write alone).
    """

    def __init__(self, redis_url: str, outboxes: dict[str, str]) -> None:
        self.outbox_names = list(outboxes)
        self.engines = [create_engine(url, pool_size=1) for url in outboxes.values()]
        for name, engine in zip(outboxes, self.engines, strict=True):
            watch_outbox_backlog(engine, name=name, timeout_seconds=5.0)
        self.groups: list[tuple[str, str]] = []
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            for stream in sorted(client.scan_iter(_type="STREAM")):
                for group in client.xinfo_groups(stream):
                    self.groups.append((stream, group["name"]))
                    watch_stream_lag(redis_url, stream, group["name"], timeout_seconds=5.0)
        finally:
            client.close()
        if not self.groups:
            raise SystemExit("bench: no consumer group on any stream: are the workers up?")

    def backlog(self) -> dict[str, int]:
        """Unsent rows per outbox, undelivered (lag) and unacknowledged (pending)
        entries per stream group; -1 when a gauge could not be read."""
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in REGISTRY.collect()
            if family.name in ("outbox_unsent_events", "event_stream_lag", "event_stream_pending")
            for sample in family.samples
        }
        counts: dict[str, int] = {}
        for name in self.outbox_names:
            value = samples.get(("outbox_unsent_events", (("outbox", name),)))
            counts[f"outbox {name}"] = -1 if value is None else int(value)
        for stream, group in self.groups:
            labels = (("group", group), ("stream", stream))
            for gauge in ("lag", "pending"):
                value = samples.get((f"event_stream_{gauge}", labels))
                # Redis leaves lag unknown (nil) after entries it would count were trimmed.
                counts[f"{stream} {group} {gauge}"] = -1 if value is None else int(value)
        return counts

    def drain(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until every count is 0; SystemExit if they are not after `timeout` s."""
        began = time.monotonic()
        initial = self.backlog()
        counts = initial
        while any(counts.values()):
            if time.monotonic() - began > timeout:
                raise SystemExit(
                    f"bench: the event pipeline did not drain in {timeout:.0f}s: "
                    + json.dumps({k: v for k, v in counts.items() if v})
                )
            time.sleep(0.2)
            counts = self.backlog()
        return {
            "seconds": round(time.monotonic() - began, 2),
            "initial": {name: count for name, count in initial.items() if count},
        }

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


def prepare(
    pipeline: EventPipeline,
    scenario: Scenario,
    port: int,
    *,
    wrk: str,
    tokens: list[str],
    tokens_file: Path,
) -> dict[str, Any]:
    """Unmeasured, before each measured run: the previous scenario's events
    (payments, logins) are applied first, so their CPU is not counted here;
    then, for a read scenario, caches hold what the scenario says again (a
    profile stays cached 60 s, a list of recommendations 120 s, a round takes
    minutes, and scenario 5's payments drop their users' recommendations): one
    request per token, then 2 s of the load itself. What it found goes in the
    run's JSON (`drain`: seconds waited and the backlog it started from)."""
    prepared: dict[str, Any] = {"drain": pipeline.drain()}
    if scenario.kind == "read":
        prepared["warm_up_statuses"] = touch_every_user(scenario, port, tokens)
        run_wrk(wrk, scenario, port, 2, tokens_file)
    return prepared


# --- checks and report -------------------------------------------------------------


def sharded_payment_checks(shard_urls: Iterable[str]) -> dict[str, int]:
    """`payment_checks` summed over the shards."""
    totals: dict[str, int] = {}
    for url in shard_urls:
        for name, value in payment_checks(url).items():
            totals[name] = totals.get(name, 0) + value
    return totals


def shard_comparison(
    summaries: dict[str, dict[str, Any]], sharded_checks: dict[str, int]
) -> dict[str, Any] | None:
    """Scenario 5s against 5: the payment write on 4 shards and on one."""
    if not {"5", "5s"} <= set(summaries):
        return None
    one, four = summaries["5"], summaries["5s"]
    return {
        "rps_ratio": round(four["rps"] / one["rps"], 3),
        "payment_cpu_ms": [
            one["cpu_ms_per_request"]["payment"],
            four["cpu_ms_per_request"]["payment"],
        ],
        "postgres_cpu_ms": [
            one["cpu_ms_per_request"]["postgres"],
            four["cpu_ms_per_request"]["postgres"],
        ],
        "open_p50_ms": [run.get("open", {}).get("p50_ms") for run in (one, four)],
        "double_charges_4_shards": sharded_checks["double_charges"],
    }


def payment_checks(payment_url: str) -> dict[str, int]:
    """Zero double charges: each succeeded payment booked once, balances = entries."""
    dsn = payment_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        checks = {
            "payments": "SELECT count(*) FROM payments",
            "payments_succeeded": "SELECT count(*) FROM payments WHERE status = 'succeeded'",
            "payment_keys": (
                "SELECT count(*) FROM idempotency_keys WHERE operation = 'CreatePayment'"
            ),
            "payments_not_booked_exactly_once": (
                "SELECT count(*) FROM payments p WHERE p.status = 'succeeded' AND"
                " (SELECT count(*) FROM ledger_transactions t WHERE t.reference_id = p.id) <> 1"
            ),
            "wallets_balance_not_sum_of_entries": (
                "SELECT count(*) FROM balances b JOIN (SELECT account_id, sum(amount) AS s"
                " FROM ledger_entries GROUP BY account_id) e ON e.account_id = b.account_id"
                " WHERE b.amount <> e.s"
            ),
            "negative_wallets": "SELECT count(*) FROM balances WHERE amount < 0",
        }
        out: dict[str, int] = {}
        for name, query in checks.items():
            cursor.execute(query)
            out[name] = int(cursor.fetchone()[0])
    out["double_charges"] = (
        out["payments_not_booked_exactly_once"]
        + max(0, out["payments"] - out["payment_keys"])
        + out["wallets_balance_not_sum_of_entries"]
    )
    return out


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    postgres = subprocess.run(  # noqa: S603 - a system binary
        [shutil.which("psql") or "/usr/bin/psql", "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    redis = subprocess.run(  # noqa: S603 - a system binary
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": postgres,
        "redis": redis.split(" sha=")[0],
        "wrk": "wrk (Debian)",
    }


def summarise(scenario: Scenario, runs: list[Run]) -> dict[str, Any]:
    requests = sum(run.wrk["requests"] for run in runs)
    seconds = sum(run.wrk["duration_us"] for run in runs) / 1e6
    statuses: dict[str, int] = {}
    for run in runs:
        for status, count in run.wrk["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))
    cpu = {tier: sum(run.cpu_seconds.get(tier, 0.0) for run in runs) for tier in TIERS}
    per_request = {tier: round(cpu[tier] * 1000 / max(ok, 1), 3) for tier in TIERS}
    errors = {
        "non_2xx": {s: c for s, c in statuses.items() if not s.startswith("2")},
        "timeouts": sum(run.wrk["timeouts"] for run in runs),
        "socket": sum(
            run.wrk["connect_errors"] + run.wrk["read_errors"] + run.wrk["write_errors"]
            for run in runs
        ),
    }
    summary: dict[str, Any] = {
        "key": scenario.key,
        "title": scenario.title,
        "connections": scenario.connections,
        "rps": round(ok / seconds, 1),
        "rps_by_round": [
            round(
                sum(c for s, c in run.wrk["statuses"].items() if s.startswith("2"))
                / (run.wrk["duration_us"] / 1e6),
                1,
            )
            for run in runs
        ],
        "ok": ok,
        "requests": requests,
        "errors": errors,
        "closed_p50_ms": round(statistics.median(r.wrk["p50_us"] for r in runs) / 1000, 2),
        "closed_p99_ms": round(max(r.wrk["p99_us"] for r in runs) / 1000, 2),
        "closed_p999_ms": round(max(r.wrk["p999_us"] for r in runs) / 1000, 2),
        "cpu_ms_per_request": per_request,
        "cpu_ms_per_request_total": round(sum(per_request.values()), 3),
        "drain_seconds": [run.extra["drain"]["seconds"] for run in runs if "drain" in run.extra],
    }
    if scenario.time_accepted:
        accepted = [run.wrk["accepted"] for run in runs]
        summary["accepted"] = {
            "count": sum(a["count"] for a in accepted),
            "p50_ms": round(statistics.median(a["p50_us"] for a in accepted) / 1000, 2),
            "p99_ms": round(max(a["p99_us"] for a in accepted) / 1000, 2),
            "p999_ms": round(max(a["p999_us"] for a in accepted) / 1000, 2),
        }
    latencies = [run.latency for run in runs if run.latency]
    if latencies:
        summary["open"] = {
            "rate": [lat["rate"] for lat in latencies],
            "p50_ms": round(statistics.median(lat["p50_ms"] for lat in latencies), 2),
            "p99_ms": round(max(lat["p99_ms"] for lat in latencies), 2),
            "p999_ms": round(max(lat["p999_ms"] for lat in latencies), 2),
            "errors": sum(lat["errors"] for lat in latencies),
            "non_2xx": sum(
                c for lat in latencies for s, c in lat["statuses"].items() if not s.startswith("2")
            ),
            "late": sum(lat["late"] for lat in latencies),
        }
    unloaded = [run.extra["unloaded"] for run in runs if "unloaded" in run.extra]
    if unloaded:
        summary["unloaded"] = {
            "rate": unloaded[0]["rate"],
            "p50_ms": round(statistics.median(u["p50_ms"] for u in unloaded), 2),
            "p99_ms": round(max(u["p99_ms"] for u in unloaded), 2),
        }
    return summary


def add_ratios(summaries: dict[str, dict[str, Any]]) -> None:
    ceiling = summaries["1"]["rps"]
    for key, summary in summaries.items():
        summary["ratio_to_ceiling"] = round(summary["rps"] / ceiling, 3)
        peer = "2w" if SCENARIO_BY_KEY[key].kind == "write" else "2r"
        if key not in ("1", "2r", "2w"):
            summary["ratio_to_peer"] = round(summary["rps"] / summaries[peer]["rps"], 3)
            summary["peer"] = peer


SCENARIO_BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}
APP_TIER = {"1": "ceiling", "2r": "monolith", "2w": "monolith"}


def targets(summaries: dict[str, dict[str, Any]], checks: dict[str, int]) -> dict[str, Any]:
    """Issue 16's targets, each with its value from this run and whether it is met."""
    s3, s5, s8 = summaries["3"], summaries["5"], summaries["8"]
    ceiling_cpu = summaries["1"]["cpu_ms_per_request"]["ceiling"]
    gateway_read_cpu = s3["cpu_ms_per_request"]["gateway"]
    non_shed_5xx = sum(
        count
        for status, count in s8["errors"]["non_2xx"].items()
        if status.startswith("5") and status != "503"
    )
    unloaded_p99 = s3.get("unloaded", {}).get("p99_ms", 0.0)
    accepted_p99 = s8["accepted"]["p99_ms"]
    result: dict[str, Any] = {
        "1_profile_read_vs_monolith": {
            "value": s3["ratio_to_peer"],
            "target": ">= 1.0",
            "met": s3["ratio_to_peer"] >= 1.0,
        },
        "2_gateway_cpu_per_read_vs_ceiling": {
            "value": round(gateway_read_cpu / ceiling_cpu, 2) if ceiling_cpu else None,
            "gateway_ms": gateway_read_cpu,
            "ceiling_ms": ceiling_cpu,
            "target": "<= 2.5",
            "met": bool(ceiling_cpu) and gateway_read_cpu <= 2.5 * ceiling_cpu,
        },
        "3_no_503_at_32_connections": {
            "value": {
                key: summaries[key]["errors"]["non_2xx"].get("503", 0)
                for key in ("3", "4", "5", "6", "7")
                if key in summaries
            },
            "target": "0 in scenarios 3-7",
            "met": all(
                summaries[key]["errors"]["non_2xx"].get("503", 0) == 0
                for key in ("3", "4", "5", "6", "7")
                if key in summaries
            ),
        },
        "3_overload": {
            "timeouts": s8["errors"]["timeouts"],
            "socket_errors": s8["errors"]["socket"],
            "5xx_other_than_503": non_shed_5xx,
            "sheds_503_429": sum(
                c for s, c in s8["errors"]["non_2xx"].items() if s in ("503", "429")
            ),
            "accepted_p99_ms": accepted_p99,
            "all_answers_p99_ms": s8["closed_p99_ms"],
            "unloaded_p99_ms": unloaded_p99,
            "p99_ratio": round(accepted_p99 / unloaded_p99, 2) if unloaded_p99 else None,
            "target": "0 timeouts, 0 non-shed 5xx, accepted p99 <= 5x unloaded p99",
            "met": s8["errors"]["timeouts"] == 0
            and s8["errors"]["socket"] == 0
            and non_shed_5xx == 0
            and bool(unloaded_p99)
            and accepted_p99 <= 5 * unloaded_p99,
        },
        "payment_write_vs_monolith": {
            "value": s5["ratio_to_peer"],
            "target": ">= 0.6 with zero double charges",
            "double_charges": checks["double_charges"],
            "met": s5["ratio_to_peer"] >= 0.6 and checks["double_charges"] == 0,
        },
    }
    if "6" in summaries:
        rec_cpu = summaries["6"]["cpu_ms_per_request"]["recommendation"]
        profile_cpu = s3["cpu_ms_per_request"]["profile"]
        result["4_cached_recommendation_vs_profile_read_cpu"] = {
            "value": round(rec_cpu / profile_cpu, 2) if profile_cpu else None,
            "recommendation_ms": rec_cpu,
            "profile_ms": profile_cpu,
            "target": "<= 1.0",
            "met": bool(profile_cpu) and rec_cpu <= profile_cpu,
        }
    if "7" in summaries:
        me_cpu = summaries["7"]["cpu_ms_per_request"]["gateway"]
        result["4_me_gateway_cpu_vs_one_read"] = {
            "value": round(me_cpu / gateway_read_cpu, 2) if gateway_read_cpu else None,
            "me_ms": me_cpu,
            "read_ms": gateway_read_cpu,
            "target": "<= 1.5",
            "met": bool(gateway_read_cpu) and me_cpu <= 1.5 * gateway_read_cpu,
        }
    waits = [w for summary in summaries.values() for w in summary.get("drain_seconds", [])]
    runs = sum(len(summary["rps_by_round"]) for summary in summaries.values())
    result["5_pipeline_drained_before_each_run"] = {
        "drained_runs": len(waits),
        "runs": runs,
        "longest_wait_s": max(waits, default=0.0),
        "target": "stream lag and outbox backlog 0 before every measured run",
        "met": len(waits) == runs,
    }
    return result


def table(summaries: dict[str, dict[str, Any]]) -> str:
    header = (
        "| # | scenario | conns | req/s | x ceiling | x peer | p50 ms | p99 ms | p99.9 ms "
        "| errors | CPU ms/req: app/gw | auth | profile | payment | rec | workers | pg "
        "| redis | total |"
    )
    lines = [header, "|" + " --- |" * 19]
    for key, s in summaries.items():
        cpu = s["cpu_ms_per_request"]
        app = cpu[APP_TIER.get(key, "gateway")]
        latency = (
            s.get("open")
            or s.get("accepted")
            or {
                "p50_ms": s["closed_p50_ms"],
                "p99_ms": s["closed_p99_ms"],
                "p999_ms": s["closed_p999_ms"],
            }
        )
        error_count = (
            sum(s["errors"]["non_2xx"].values()) + s["errors"]["timeouts"] + s["errors"]["socket"]
        )
        lines.append(
            f"| {key} | {s['title']} | {s['connections']} | {s['rps']:.0f} "
            f"| {s['ratio_to_ceiling']:.2f} | {s.get('ratio_to_peer', float('nan')):.2f} "
            f"| {latency['p50_ms']:.1f} | {latency['p99_ms']:.1f} | {latency['p999_ms']:.1f} "
            f"| {error_count} | {app:.2f} | {cpu['auth']:.2f} | {cpu['profile']:.2f} "
            f"| {cpu['payment']:.2f} | {cpu['recommendation']:.2f} | {cpu['workers']:.2f} "
            f"| {cpu['postgres']:.2f} | {cpu['redis']:.2f} | {s['cpu_ms_per_request_total']:.2f} |"
        )
    return "\n".join(lines).replace("| nan |", "| - |")


# --- main --------------------------------------------------------------------------


def main() -> int:  # noqa: PLR0915 - one linear run
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~3 minute smoke run")
    parser.add_argument("--users", type=int)
    parser.add_argument("--top-ups", type=int, default=5, help="top-ups per user (2 entries each)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float, help="seconds per run")
    parser.add_argument("--tokens", type=int, help="users logged in to send requests")
    parser.add_argument("--only", default="", help="comma-separated scenario keys (debugging)")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--log", type=Path, help="copy the platform's log (WARNING and up) here")
    args = parser.parse_args()
    users = args.users or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (2 if args.quick else 3)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    token_count = min(users, args.tokens or (200 if args.quick else 1000))
    scenarios = [s for s in SCENARIOS if not args.only or s.key in args.only.split(",")]

    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    redis, redis_port = start_redis(workdir)
    urls: dict[str, str] = {}
    shard_urls: dict[str, str] = {}
    platform_ = Platform([], output=None)
    began = time.monotonic()
    try:
        urls = create_databases(POSTGRES_URL)
        env = platform_env(redis_port, urls)
        ports = {name: free_port() for name in (*SERVICES, "gateway")}
        config = PlatformConfig(ports=ports, data_dir=workdir / "data", extra_env=env)
        base_env = config.base_env()
        migrate(base_env)
        counts = seed(
            auth_url=urls["auth"],
            profile_url=urls["profile"],
            payment_url=urls["payment"],
            users=users,
            top_ups_per_user=args.top_ups,
        )
        seed_recommendations(urls["recommendation"])
        shard_urls = create_shard_databases(POSTGRES_URL)
        sharded_env = {
            **base_env,
            "PAYMENT_SHARDS": ",".join(f"{name}={url}" for name, url in shard_urls.items()),
        }
        subprocess.run(
            [sys.executable, "-m", "payment_service", "migrate"], env=sharded_env, check=True
        )
        seed_shards(shard_urls, users, args.top_ups)
        print(
            f"bench: seeded {counts.users} users, profiles and wallets, "
            f"{counts.ledger_entries} ledger entries in {time.monotonic() - began:.0f}s",
            flush=True,
        )
        components = fit_connections(platform_components(config))
        cold_profile, cold_gateway = free_port(), free_port()
        sharded_payment, sharded_gateway = free_port(), free_port()
        ceiling_port, monolith_port = free_port(), free_port()
        components += [
            service_component(
                "profile-cold",
                "profile",
                cold_profile,
                {**base_env, "PROFILE_CACHE_TTL_SECONDS": "0.001"},
            ),
            gateway_component(
                "gateway-cold",
                cold_gateway,
                {**base_env, "PROFILE_TARGET": f"127.0.0.1:{cold_profile}"},
            ),
            # No relay for the sharded payment service: its outbox waits (the
            # relays and consumers are measured with scenario 5).
            service_component(
                "payment-sharded",
                "payment",
                sharded_payment,
                {**sharded_env, **pool_env("payment", SHARD_POOL)},
            ),
            gateway_component(
                "gateway-sharded",
                sharded_gateway,
                {**base_env, "PAYMENT_TARGET": f"127.0.0.1:{sharded_payment}"},
            ),
            gunicorn_peer("ceiling", "ceiling:app", ceiling_port, base_env),
            gunicorn_peer(
                "monolith",
                "monolith:create_app()",
                monolith_port,
                {
                    **base_env,
                    "MONOLITH_PROFILE_DATABASE_URL": urls["profile"],
                    "MONOLITH_PAYMENT_DATABASE_URL": urls["payment"],
                    "MONOLITH_JWKS_URL": f"http://127.0.0.1:{ports['gateway']}/v1/auth/jwks",
                },
            ),
        ]
        platform_log = (workdir / "platform.log").open("w")
        platform_ = Platform(components, output=platform_log)
        platform_.start(timeout=120)
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        tokens = login_tokens(gateway, token_count)
        tokens_file = workdir / "tokens.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        pids = {name: process.pid for name, process in platform_.processes.items()}
        roots = {
            "gateway": [pids["gateway"], pids["gateway-cold"], pids["gateway-sharded"]],
            "auth": [pids["auth"]],
            "profile": [pids["profile"], pids["profile-cold"]],
            "payment": [pids["payment"], pids["payment-sharded"]],
            "recommendation": [pids["recommendation"]],
            "workers": [
                pids[name]
                for name in ("relay", "auth-relay", "profile-worker", "recommendation-worker")
                if name in pids
            ],
            "ceiling": [pids["ceiling"]],
            "monolith": [pids["monolith"]],
        }
        meter = CpuMeter(roots)
        port_of = {
            "gateway": ports["gateway"],
            "gateway-cold": cold_gateway,
            "gateway-sharded": sharded_gateway,
            "ceiling": ceiling_port,
            "monolith": monolith_port,
        }
        print(
            f"bench: platform up, {len(tokens)} tokens; warming up "
            f"({time.monotonic() - began:.0f}s)",
            flush=True,
        )
        for scenario in scenarios:
            run_wrk(wrk, scenario, port_of[scenario.port_name], 2, tokens_file)
        pipeline = EventPipeline(
            base_env["REDIS_URL"], {"auth": urls["auth"], "payment": urls["payment"]}
        )
        runs: dict[str, list[Run]] = {scenario.key: [] for scenario in scenarios}
        for round_ in range(1, rounds + 1):
            for scenario in scenarios:
                port = port_of[scenario.port_name]
                prepared = prepare(
                    pipeline, scenario, port, wrk=wrk, tokens=tokens, tokens_file=tokens_file
                )
                time.sleep(0.5)
                before = meter.snapshot()
                result = run_wrk(wrk, scenario, port, seconds, tokens_file)
                cpu = CpuMeter.seconds(before, meter.snapshot())
                run = Run(scenario.key, round_, result, cpu, extra=prepared)
                ok = sum(c for s, c in result["statuses"].items() if s.startswith("2"))
                rps = ok / (result["duration_us"] / 1e6)
                if scenario.latency_run:
                    time.sleep(0.5)
                    run.latency = run_open(
                        scenario, port, max(10.0, min(rps * 0.5, 2500.0)), seconds, tokens_file
                    )
                if scenario.key == "3":
                    run.extra["unloaded"] = run_open(
                        scenario, port, 100.0, min(seconds, 5.0), tokens_file
                    )
                runs[scenario.key].append(run)
                print(
                    f"bench: round {round_} scenario {scenario.key:>2}: {rps:8.0f} req/s"
                    + (f", open p99 {run.latency['p99_ms']} ms" if run.latency else ""),
                    flush=True,
                )
        pipeline.close()
        summaries = {
            scenario.key: summarise(scenario, runs[scenario.key]) for scenario in scenarios
        }
        checks = payment_checks(urls["payment"])
        sharded_checks = sharded_payment_checks(shard_urls.values())
        report: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": subprocess.run(
                ["git", "rev-parse", "HEAD"],  # noqa: S607
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip(),
            "machine": machine(),
            "settings": {
                "quick": args.quick,
                "users": users,
                "ledger_entries": counts.ledger_entries,
                "tokens": len(tokens),
                "rounds": rounds,
                "seconds_per_run": seconds,
                "wrk_threads": 2,
                "open_model": "bench/openload.py, rate = 0.5 x the closed-model req/s of the"
                " same round (capped at 2500/s), 64 connections, latency from due time",
                "gateway_workers": os.environ.get("GATEWAY_WORKERS", "2 (default)"),
                "gateway_threads": os.environ.get("GATEWAY_THREADS", "8 (default)"),
                "log_level": "WARNING",
            },
            "scenarios": summaries,
            "payment_checks": checks,
            "payment_checks_4_shards": sharded_checks,
        }
        report["payment_write_4_shards_vs_1"] = shard_comparison(summaries, sharded_checks)
        if {"1", "2r", "2w", "3", "5", "8"} <= set(summaries):
            add_ratios(summaries)
            report["targets"] = targets(summaries, checks)
            rendered = table(summaries)
        else:
            rendered = json.dumps(summaries, indent=1)
        report["runs"] = [run.__dict__ for scenario_runs in runs.values() for run in scenario_runs]
        report["elapsed_seconds"] = round(time.monotonic() - began)
        results = BENCH / "results"
        results.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{stamp}{'-quick' if args.quick else ''}"
        (results / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
        (results / f"{name}.md").write_text(rendered + "\n")
        print("\n" + rendered + "\n")
        print(
            json.dumps(
                {
                    "targets": report.get("targets"),
                    "payment_checks": checks,
                    "payment_write_4_shards_vs_1": report.get("payment_write_4_shards_vs_1"),
                },
                indent=1,
            )
        )
        print(f"\nbench: wrote bench/results/{name}.json ({report['elapsed_seconds']}s)")
        return 0
    except BaseException:
        log = workdir / "platform.log"
        if log.exists():
            print("bench: the platform's last output:\n" + log.read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        platform_.stop()
        if args.log and (workdir / "platform.log").exists():
            shutil.copyfile(workdir / "platform.log", args.log)
        redis.terminate()
        redis.wait(timeout=10)
        if (urls or shard_urls) and not args.keep:
            drop_databases(POSTGRES_URL, [*urls.values(), *shard_urls.values()])
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
