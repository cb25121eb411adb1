"""Latency of GET /v1/recommendations through the real platform: cache miss and hit.

Starts the whole platform as `make run` does (gunicorn gateway + gRPC services
+ payment relay + recommendation worker) on fresh PostgreSQL databases and
Redis (or the embedded defaults with --embedded), seeds purchase histories
through the public API (users buying 1-3 items per payment from a catalogue
with a skewed popularity), waits until the worker has learned them, then per
user: one GET right after their last purchase (a miss: their list was dropped
when their history changed, so it is scored from the model) and `--hits` more
(hits). One sequential client; prints p50/p90/p99 per kind.

    .venv/bin/python bench/recommendation/latency.py --users 300
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from switchyard_dev.launcher import SERVICES, Platform, PlatformConfig, platform_components
from switchyard_dev.ports import free_port

ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def post(api: httpx.Client, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    response = api.post(path, json=body, headers=headers | key)
    if response.status_code != 201:
        raise SystemExit(f"{path}: {response.status_code} {response.text}")
    return response.json()


def main() -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--payments", type=int, default=6, help="payments per user")
    parser.add_argument("--catalogue", type=int, default=400)
    parser.add_argument("--hits", type=int, default=5, help="cached reads per user")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - reproducible bench data
    catalogue = [f"sku-{n:04d}" for n in range(args.catalogue)]
    weights = [1 / (rank + 1) ** 0.8 for rank in range(args.catalogue)]

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    databases: list[str] = []
    # Cheap password hashing: signups only seed the data here, they are not measured.
    env: dict[str, str] = {
        "LOG_LEVEL": "WARNING",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "8192",
    }
    if not args.embedded:
        for name in SERVICES:
            database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{database}"'))
            databases.append(database)
            env[f"{name.upper()}_DATABASE_URL"] = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
        env["REDIS_URL"] = "redis://127.0.0.1:6379/14"
        env["RECOMMENDATION_WORKER_GROUP"] = f"bench-{uuid.uuid4().hex[:8]}"
        env["RECOMMENDATION_WORKER_START_ID"] = "$"
        env["AUTH_USERS_STREAM"] = env["PROFILE_USERS_STREAM"] = f"bench-{uuid.uuid4().hex[:8]}"
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    miss: list[float] = []
    hit: list[float] = []
    with tempfile.TemporaryDirectory() as data_dir:
        config = PlatformConfig(ports=ports, data_dir=Path(data_dir), extra_env=env)
        platform = Platform(platform_components(config), output=None)
        platform.start(timeout=120)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{ports['gateway']}", timeout=30) as api:
                accounts: list[dict[str, str]] = []
                started = time.monotonic()
                for n in range(args.users):
                    body = {
                        "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
                        "password": "a long bench passphrase",
                    }
                    tokens = api.post("/v1/auth/signup", json=body).json()
                    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
                    accounts.append(headers)
                    post(api, "/v1/wallet/top-ups", headers, {"amount": 10**9, "currency": "EUR"})
                    for _ in range(args.payments):
                        chosen = set(rng.choices(catalogue, weights, k=rng.randint(1, 3)))
                        items = [{"sku": s, "quantity": 1, "unit_amount": 100} for s in chosen]
                        payment = {
                            "amount": 100 * len(items),
                            "currency": "EUR",
                            "merchant_id": "bench",
                            "items": items,
                        }
                        post(api, "/v1/payments", headers, payment)
                    if n % 50 == 0:
                        print(f"seeded {n} users", flush=True)
                print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
                time.sleep(5)  # let the worker (or the sink) catch up with the last events
                for headers in accounts:
                    for samples in [miss] + [hit] * args.hits:
                        begin = time.perf_counter()
                        response = api.get(
                            "/v1/recommendations", params={"limit": 10}, headers=headers
                        )
                        samples.append((time.perf_counter() - begin) * 1000)
                        if response.status_code != 200 or not response.json()["items"]:
                            raise SystemExit(f"unexpected {response.status_code}: {response.text}")
        finally:
            platform.stop()
    with admin.connect() as connection:
        for database in databases:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    mode = "embedded (SQLite, in-process cache)" if args.embedded else "PostgreSQL + Redis"
    print(
        f"{mode}: {args.users} users x {args.payments} payments over {args.catalogue} skus; "
        "GET /v1/recommendations?limit=10 through the gateway, one sequential client"
    )
    print(f"{'kind':<12}{'n':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for kind, samples in (("cache miss", miss), ("cache hit", hit)):
        print(
            f"{kind:<12}{len(samples):>6}{percentile(samples, 0.5):>10.1f}"
            f"{percentile(samples, 0.9):>10.1f}{percentile(samples, 0.99):>10.1f}"
            f"{statistics.fmean(samples):>10.1f}"
        )


if __name__ == "__main__":
    main()
