"""Helpers to run the real platform as subprocesses on free ports: gunicorn gateway + gRPC services.

Two ways to run it, as users do: `embedded` (SQLite files and in-process
caches, what `make run` does on a bare laptop) and `production` (a fresh
PostgreSQL database per service and the real Redis).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from switchyard_dev.launcher import (
    SERVICES,
    Platform,
    PlatformConfig,
    platform_components,
)
from switchyard_dev.ports import free_port


@dataclass
class RunningPlatform:
    mode: str
    config: PlatformConfig
    platform: Platform
    log_path: Path
    log: IO[str]

    def stop(self) -> None:
        self.platform.stop()
        self.log.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports['gateway']}"

    def database_url(self, service: str) -> str:
        """The URL of `service`'s own database, as that service was given it."""
        default = f"sqlite:///{(self.config.data_dir / f'{service}.db').resolve()}"
        return self.config.extra_env.get(f"{service.upper()}_DATABASE_URL", default)

    @property
    def gateway_metrics_url(self) -> str:
        """The gateway's private /metrics (never on the public port)."""
        return f"http://127.0.0.1:{self.config.extra_env['GATEWAY_METRICS_PORT']}/metrics"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)


def isolated_streams() -> dict[str, str]:
    """Settings giving one test platform event streams of its own: the users
    stream (auth -> profile), the payments stream (payment -> recommendation)
    and a recommendation consumer group that starts at the stream's end."""
    tag = uuid.uuid4().hex[:12]
    users, payments = f"users-{tag}", f"payments-{tag}"
    return {
        "AUTH_USERS_STREAM": users,
        "PROFILE_USERS_STREAM": users,
        "PAYMENT_EVENTS_STREAM": payments,
        "RECOMMENDATION_PAYMENTS_STREAM": payments,
        "RECOMMENDATION_WORKER_GROUP": f"recommendation-{tag}",
        "RECOMMENDATION_WORKER_START_ID": "$",
    }


def start_platform(
    mode: str,
    tmp_path: Path,
    create_database: Callable[[str], str] | None,
    redis_url: str | None,
    extra_env: dict[str, str] | None = None,
) -> RunningPlatform:
    env: dict[str, str] = {
        "LOG_LEVEL": "INFO",
        # Cheap password hashing keeps the suite fast; production uses the defaults.
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST_KIB": "8192",
        "GATEWAY_WORKERS": "2",
        # Every test logs in from 127.0.0.1: the per-address login limit would
        # throttle the whole suite (tests/e2e/test_auth_*.py test the per-account one).
        "AUTH_LOGIN_ADDRESS_FREE_FAILURES": "100000",
        # Likewise the gateway's per-address limits of signup, login and refresh
        # (tests/e2e/test_abuse.py turns them on and tests them).
        "GATEWAY_RATE_LIMIT_SIGNUP": "",
        "GATEWAY_RATE_LIMIT_LOGIN": "",
        "GATEWAY_RATE_LIMIT_REFRESH": "",
        # Rotation tests: a new kid is fetched soon after an unknown-kid probe.
        "GATEWAY_JWKS_REFETCH_MIN_INTERVAL_SECONDS": "1",
        "AUTH_REFRESH_REUSE_OVERLAP_SECONDS": "1",
        # The shared popular list is cached 30 s by default: tests that watch
        # it change (tests/e2e/test_recommendations.py) wait 1 s instead.
        "RECOMMENDATION_POPULAR_CACHE_TTL_SECONDS": "1",
    }
    if create_database is not None:
        for name in SERVICES:
            env[f"{name.upper()}_DATABASE_URL"] = create_database(name)
            # Several platforms share one PostgreSQL (100 connections by default).
            env[f"{name.upper()}_DB_POOL_SIZE"] = "3"
            env[f"{name.upper()}_DB_MAX_OVERFLOW"] = "3"
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        # Platforms share the test Redis: each gets event streams of its own
        # (another platform's load never queues up in front of its events).
        env.update(isolated_streams())
    # The gateway serves /metrics on a port of its own only.
    env["GATEWAY_METRICS_PORT"] = str(free_port())
    env.update(extra_env or {})
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    config = PlatformConfig(ports=ports, data_dir=tmp_path / "data", extra_env=env)
    log_path = tmp_path / "platform.log"
    log = log_path.open("w")
    platform = Platform(platform_components(config), output=log)
    try:
        platform.start(timeout=90)
    except Exception as exc:
        platform.stop()
        log.close()
        output = log_path.read_text()[-5000:]
        raise RuntimeError(f"platform did not start: {exc}\n{output}") from None
    return RunningPlatform(mode, config, platform, log_path, log)


@dataclass
class Account:
    email: str
    password: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class AuthActions:
    """Signs users up and in through the public API."""

    def __init__(self, api: httpx.Client, *, wait_for_profiles: bool = False) -> None:
        self.api = api
        # Signup creates the profile before it answers; only when that call
        # fails does the UserRegistered event create it a moment later. With
        # this set, `signup` returns once the profile exists either way.
        self.wait_for_profiles = wait_for_profiles

    def signup(self, display_name: str = "Ada Lovelace", **extra: Any) -> Account:
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        password = "correct horse battery staple"
        body = {"email": email, "password": password, "display_name": display_name, **extra}
        response = self.api.post("/v1/auth/signup", json=body)
        assert response.status_code == 201, response.text
        tokens = response.json()
        account = Account(
            email, password, tokens["user_id"], tokens["access_token"], tokens["refresh_token"]
        )
        if self.wait_for_profiles:
            self.wait_for_profile(account)
        return account

    def wait_for_profile(self, account: Account, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until the profile is readable (at once, unless signup's
        CreateProfile failed and the event has yet to create it; the public
        view never creates one lazily)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.api.get(f"/v1/profiles/{account.user_id}", headers=account.headers)
            if response.status_code == 200:
                return dict(response.json())
            assert response.status_code == 404, response.text
            assert time.monotonic() < deadline, "the profile was not created from the event"
            time.sleep(0.05)
