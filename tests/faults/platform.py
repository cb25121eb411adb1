"""The real platform for fault-injection tests: every process of `make run`,
on free loopback ports, PostgreSQL per service and Redis, with TCP proxies
where a test needs to cut a link, and handles to kill, freeze and restart
any process."""

from __future__ import annotations

import dataclasses
import os
import signal
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from e2e.harness import Account, AuthActions, isolated_streams
from sqlalchemy.engine import make_url
from switchyard_dev.launcher import (
    SERVICES,
    WORKER_SERVICES,
    Component,
    Platform,
    PlatformConfig,
    grpc_serving,
    platform_components,
)
from switchyard_dev.ports import free_ports
from switchyard_dev.supervisor import RestartPolicy, Supervisor

from faults.proxy import TcpProxy

PROBLEM_JSON = "application/problem+json"


@dataclass
class FaultPlatform:
    config: PlatformConfig
    platform: Platform
    components: dict[str, Component]
    log_path: Path
    log: IO[str]
    proxies: dict[str, TcpProxy] = field(default_factory=dict)
    # Set when started with `supervise`: the `make run` supervisor restarts what fails.
    supervisor: Supervisor | None = None
    # "embedded" (SQLite, no Redis) or "production" (PostgreSQL + Redis).
    mode: str = "production"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports['gateway']}"

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def pid(self, name: str) -> int:
        return self.platform.processes[name].pid

    def signal(self, name: str, signum: int) -> None:
        os.kill(self.pid(name), signum)

    def sigkill(self, name: str) -> int:
        """SIGKILL `name` and leave it to the supervisor; its pid."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def current_pid(self, name: str) -> int | None:
        process = self.platform.processes.get(name)
        return None if process is None else process.pid

    def kill(self, name: str) -> None:
        process = self.platform.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.platform.stop_component(name)  # closes its output pipe

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start `name` again (no migrations) and wait until it is healthy."""
        component = dataclasses.replace(self.components[name], prepare=[])
        self.platform.start_component(component, timeout)

    def metrics(self, name: str) -> str:
        port = self.config.metrics_ports[name]
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    def serving(self, name: str) -> bool:
        return grpc_serving(f"127.0.0.1:{self.config.ports[name]}", timeout=0.5)

    def stop(self) -> None:
        for name, process in self.platform.processes.items():
            if process.poll() is None:
                # A frozen process would ignore SIGTERM until the grace ran out.
                os.kill(process.pid, signal.SIGCONT)
            del name
        if self.supervisor is not None:
            self.supervisor.stop(grace=15)
        else:
            self.platform.stop(grace=15)
        for proxy in self.proxies.values():
            proxy.stop()
        self.log.close()


def _through(proxy: TcpProxy, url: str) -> str:
    return (
        make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )


def start_fault_platform(
    tmp_path: Path,
    create_database: Callable[[str], str] | None,
    redis_url: str | None,
    *,
    supervise: RestartPolicy | None = None,
    proxied_databases: tuple[str, ...] = (),
    proxy_redis: bool = False,
    env: dict[str, str] | None = None,
    component_env: dict[str, dict[str, str]] | None = None,
    extra_components: Callable[[PlatformConfig, dict[str, str]], list[Component]] | None = None,
    gateway_env: Callable[[PlatformConfig], dict[str, str]] | None = None,
) -> FaultPlatform:
    """Start every process; `proxied_databases` / `proxy_redis` put a TcpProxy
    (in `proxies`, keyed by service name or "redis") on that link. With no
    `create_database` and no `redis_url`, the embedded defaults (SQLite, no
    Redis); with `supervise`, the `make run` supervisor keeps it up."""
    proxies: dict[str, TcpProxy] = {}
    base: dict[str, str] = {
        "LOG_LEVEL": "INFO",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST_KIB": "8192",
        "GATEWAY_WORKERS": "1",
        # Readiness is re-checked often so the tests see it change quickly.
        **{f"{name.upper()}_READINESS_INTERVAL_SECONDS": "0.5" for name in SERVICES},
        # Every test calls from 127.0.0.1: the gateway's per-address limits
        # would throttle them (tests/e2e/test_abuse.py tests those).
        "GATEWAY_RATE_LIMIT_SIGNUP": "",
        "GATEWAY_RATE_LIMIT_LOGIN": "",
        "GATEWAY_RATE_LIMIT_REFRESH": "",
        # Several platforms share one PostgreSQL (100 connections by default).
        **{f"{name.upper()}_DB_POOL_SIZE": "3" for name in SERVICES},
        **{f"{name.upper()}_DB_MAX_OVERFLOW": "3" for name in SERVICES},
    }
    # No create_database: each service keeps its SQLite file under data/ (embedded).
    for name in SERVICES:
        if create_database is None:
            break
        url = create_database(name)
        if name in proxied_databases:
            parsed = make_url(url)
            proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432)).start()
            proxies[name] = proxy
            url = _through(proxy, url)
        base[f"{name.upper()}_DATABASE_URL"] = url
    if proxy_redis and redis_url is not None:
        parsed = make_url(redis_url.replace("redis://", "postgresql://", 1))
        proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 6379)).start()
        proxies["redis"] = proxy
        redis_url = redis_url.replace(f":{parsed.port}", f":{proxy.port}", 1)
    if redis_url is not None:
        base["REDIS_URL"] = redis_url
        # Platforms share the test Redis: each gets event streams of its own.
        base.update(isolated_streams())
    base.update(env or {})
    wanted = (
        *SERVICES,
        "gateway",
        *(f"metrics:{name}" for name in (*SERVICES, "relay", "gateway")),
        *(f"liveness:{name}" for name in WORKER_SERVICES),
    )
    free = free_ports(wanted)
    ports = {name: free[name] for name in (*SERVICES, "gateway")}
    metrics_ports = {name: free[f"metrics:{name}"] for name in (*SERVICES, "relay", "gateway")}
    config = PlatformConfig(
        ports=ports,
        data_dir=tmp_path / "data",
        extra_env=base,
        metrics_ports=metrics_ports,
        liveness_ports={name: free[f"liveness:{name}"] for name in WORKER_SERVICES},
    )
    components = platform_components(config)
    for component in components:
        overrides = (component_env or {}).get(component.name)
        if overrides:
            component.env = {**component.env, **overrides}
    if extra_components is not None:
        gateway_at = next(i for i, c in enumerate(components) if c.name == "gateway")
        components[gateway_at:gateway_at] = extra_components(config, dict(components[0].env))
    if gateway_env is not None:
        gateway = next(c for c in components if c.name == "gateway")
        gateway.env = {**gateway.env, **gateway_env(config)}
    log_path = tmp_path / "platform.log"
    log = log_path.open("w")
    platform = Platform(components, output=log)
    try:
        platform.start(timeout=90)
    except Exception as exc:
        platform.stop()
        log.close()
        for proxy in proxies.values():
            proxy.stop()
        output = log_path.read_text()[-5000:]
        raise RuntimeError(f"platform did not start: {exc}\n{output}") from None
    supervisor = None
    if supervise is not None:

        def report(line: str) -> None:
            log.write(line + "\n")
            log.flush()

        supervisor = Supervisor(platform, supervise, report=report).start()
    return FaultPlatform(
        config,
        platform,
        {c.name: c for c in components},
        log_path,
        log,
        proxies,
        supervisor,
        "embedded" if create_database is None and redis_url is None else "production",
    )


def new_account(api: httpx.Client) -> Account:
    """A signed-up account whose profile (made from auth's event) exists."""
    account = AuthActions(api).signup()
    wait_for(
        lambda: api.get("/v1/profiles/me", headers=account.headers).status_code == 200,
        timeout=20,
        interval=0.1,
    )
    return account


def top_up(api: httpx.Client, account: Account, amount: int = 100_000) -> None:
    response = api.post(
        "/v1/wallet/top-ups",
        json={"amount": amount, "currency": "EUR"},
        headers={**account.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code in (200, 201), response.text


def pay(api: httpx.Client, account: Account, key: str, amount: int = 100) -> httpx.Response:
    return api.post(
        "/v1/payments",
        json={
            "amount": amount,
            "currency": "EUR",
            "merchant_id": "merchant-faults",
            "items": [{"sku": "sku-1", "quantity": 1, "unit_amount": amount}],
        },
        headers={**account.headers, "Idempotency-Key": key},
    )


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def median_latency(call: Callable[[], httpx.Response], samples: int = 15) -> float:
    durations = []
    for _ in range(samples):
        response, seconds = timed(call)
        assert response.status_code == 200, response.text
        durations.append(seconds)
    return statistics.median(durations)


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> float:
    """Seconds until `condition()` is truthy; AssertionError after `timeout`."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def record(name: str, seconds: float) -> None:
    """Print a measured recovery time (shown with `pytest -s`, kept in the log)."""
    line = f"RECOVERY {name}: {seconds:.2f}s"
    print(line)
    path = os.environ.get("SWITCHYARD_FAULTS_REPORT")
    if path:
        with open(path, "a") as report:
            report.write(line + "\n")


@contextmanager
def frozen(platform: FaultPlatform, name: str) -> Iterator[None]:
    platform.signal(name, signal.SIGSTOP)
    try:
        yield
    finally:
        platform.signal(name, signal.SIGCONT)
