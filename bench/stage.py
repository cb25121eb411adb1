"""The platform on a small seeded data set, for the bench's profiling tools.

`staged_platform` does what `make bench` does before its scenarios, smaller:
a private Redis, fresh PostgreSQL databases (dropped afterwards) with each
service's migrations and bench/seed.py's users, profiles and wallets, every
process `make run` starts (services, relays, workers, the gateway), plus any
`extra` components, and `tokens` logged-in users' access tokens in a file
for bench/wrk/switchyard.lua.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from switchyard_dev.launcher import (
    SERVICES,
    Component,
    Platform,
    PlatformConfig,
    platform_components,
)

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from seed import seed  # noqa: E402

import bench  # noqa: E402 - after the path is set


@dataclass(frozen=True)
class Staged:
    platform: Platform
    ports: dict[str, int]
    env: dict[str, str]
    tokens_file: Path
    workdir: Path


@contextmanager
def staged_platform(
    *,
    users: int = 2000,
    tokens: int = 200,
    env: dict[str, str] | None = None,
    extra: Callable[[dict[str, str]], list[Component]] = lambda _env: [],
) -> Iterator[Staged]:
    """The platform up and seeded; `extra(base_env)` adds components to it."""
    workdir = Path(tempfile.mkdtemp(prefix="switchyard-stage-"))
    redis, redis_port = bench.start_redis(workdir)
    urls: dict[str, str] = {}
    platform_ = Platform([], output=None)
    try:
        urls = bench.create_databases(bench.POSTGRES_URL)
        platform_env = bench.platform_env(redis_port, urls) | (env or {})
        ports = {name: bench.free_port() for name in (*SERVICES, "gateway")}
        config = PlatformConfig(ports=ports, data_dir=workdir / "data", extra_env=platform_env)
        base_env = config.base_env()
        bench.migrate(base_env)
        seed(
            auth_url=urls["auth"],
            profile_url=urls["profile"],
            payment_url=urls["payment"],
            users=users,
            top_ups_per_user=2,
        )
        components = platform_components(config) + extra(base_env)
        platform_ = Platform(components, output=(workdir / "platform.log").open("w"))
        platform_.start(timeout=120)
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        tokens_file = workdir / "tokens.txt"
        tokens_file.write_text("\n".join(bench.login_tokens(gateway, tokens)) + "\n")
        yield Staged(platform_, ports, base_env, tokens_file, workdir)
    finally:
        platform_.stop()
        redis.terminate()
        redis.wait(timeout=10)
        if urls:
            bench.drop_databases(bench.POSTGRES_URL, urls.values())
        shutil.rmtree(workdir, ignore_errors=True)
