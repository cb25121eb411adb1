"""Latency of the user journey through the real platform: signup, login,
profile read and profile update, one client, sequential requests.

Starts the whole platform (gunicorn gateway + gRPC services) as `make run`
does, on fresh PostgreSQL databases and Redis (or the embedded defaults with
--embedded), with production password-hashing parameters, then prints
p50/p90/p99 per step.

    .venv/bin/python bench/journey_latency.py --users 100
"""

from __future__ import annotations

import argparse
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


def timed(
    samples: list[float], status: int, api: httpx.Client, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    started = time.perf_counter()
    response = api.request(method, path, **kwargs)
    samples.append((time.perf_counter() - started) * 1000)
    if response.status_code != status:
        raise SystemExit(f"unexpected {response.status_code}: {response.text}")
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args()

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    databases: list[str] = []
    env: dict[str, str] = {"LOG_LEVEL": "WARNING"}
    if not args.embedded:
        for name in SERVICES:
            database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{database}"'))
            databases.append(database)
            env[f"{name.upper()}_DATABASE_URL"] = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
        env["REDIS_URL"] = "redis://127.0.0.1:6379/14"
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    with tempfile.TemporaryDirectory() as data_dir:
        config = PlatformConfig(ports=ports, data_dir=Path(data_dir), extra_env=env)
        platform = Platform(platform_components(config), output=None)
        platform.start(timeout=120)
        try:
            steps: dict[str, list[float]] = {
                "signup": [],
                "login": [],
                "profile read": [],
                "profile update": [],
            }
            with httpx.Client(base_url=f"http://127.0.0.1:{ports['gateway']}") as api:
                for _ in range(args.users):
                    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
                    credentials = {"email": email, "password": "a long bench passphrase"}
                    timed(steps["signup"], 201, api, "POST", "/v1/auth/signup", json=credentials)
                    login = timed(
                        steps["login"], 200, api, "POST", "/v1/auth/login", json=credentials
                    )
                    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                    for _ in range(5):
                        timed(
                            steps["profile read"],
                            200,
                            api,
                            "GET",
                            "/v1/profiles/me",
                            headers=headers,
                        )
                    timed(
                        steps["profile update"],
                        200,
                        api,
                        "PATCH",
                        "/v1/profiles/me",
                        headers=headers,
                        json={"bio": "b"},
                    )
        finally:
            platform.stop()
    with admin.connect() as connection:
        for database in databases:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    mode = "embedded (SQLite, in-process cache)" if args.embedded else "PostgreSQL + Redis"
    print(f"{mode}, {args.users} users, one sequential client")
    print(f"{'step':<16}{'n':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for step, samples in steps.items():
        print(
            f"{step:<16}{len(samples):>6}{percentile(samples, 0.5):>10.1f}"
            f"{percentile(samples, 0.9):>10.1f}{percentile(samples, 0.99):>10.1f}"
            f"{statistics.fmean(samples):>10.1f}"
        )


if __name__ == "__main__":
    main()
