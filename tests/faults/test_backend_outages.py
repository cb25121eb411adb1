"""Each backend fails on its own: killed, frozen, or cut off from its
database, the other routes keep answering and the failed one recovers
without restarting the gateway."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from e2e.harness import Account
from grpc_health.v1 import health_pb2, health_pb2_grpc

from faults.platform import (
    PROBLEM_JSON,
    FaultPlatform,
    median_latency,
    new_account,
    record,
    start_fault_platform,
    timed,
    top_up,
    wait_for,
)


@pytest.fixture(scope="module")
def fp(
    tmp_path_factory: pytest.TempPathFactory,
    create_postgres_database: Callable[[str], str],
    redis_url: str,
) -> Iterator[FaultPlatform]:
    running = start_fault_platform(
        tmp_path_factory.mktemp("outages"),
        create_postgres_database,
        redis_url,
        proxied_databases=("profile",),
        # Short breaker pause so recovery is measured in seconds, as in production.
        env={"GATEWAY_BREAKER_OPEN_SECONDS": "2"},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(fp: FaultPlatform) -> Iterator[httpx.Client]:
    with fp.client() as client:
        yield client


@pytest.fixture(scope="module")
def account(api: httpx.Client) -> Account:
    account = new_account(api)
    top_up(api, account)
    return account


def _routes(api: httpx.Client, account: Account) -> dict[str, Callable[[], httpx.Response]]:
    """One route per backend (a login needs auth; the others verify tokens locally)."""
    return {
        "auth": lambda: api.post(
            "/v1/auth/login", json={"email": account.email, "password": account.password}
        ),
        "profile": lambda: api.get("/v1/profiles/me", headers=account.headers),
        "payment": lambda: api.get("/v1/wallet", headers=account.headers),
    }


def _assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["status"] == status


def _steadily_ok(call: Callable[[], httpx.Response], times: int = 6) -> bool:
    return all(call().status_code == 200 for _ in range(times))


@pytest.mark.parametrize("victim", ["profile", "payment", "auth"])
def test_killed_backend_fails_fast_alone_and_recovers(
    fp: FaultPlatform, api: httpx.Client, account: Account, victim: str
) -> None:
    routes = _routes(api, account)
    for call in routes.values():
        # A previous test's fault may still be healing in one gunicorn worker.
        wait_for(lambda call=call: _steadily_ok(call), timeout=20, interval=0.2)
    fp.kill(victim)
    try:
        for _ in range(3):
            response, seconds = timed(routes[victim])
            _assert_problem(response, 503)
            assert response.headers.get("Retry-After")
            assert seconds < 1.0, f"{victim} down: 503 took {seconds:.2f}s"
        for name, call in routes.items():
            if name != victim:
                assert call().status_code == 200, f"{name} failed while {victim} was down"
    finally:
        started = time.monotonic()
        fp.restart(victim)
        process_up = time.monotonic() - started
    # Each gunicorn worker has its own channel and breaker: recovered means
    # every worker answers, so several calls in a row must succeed.
    recovered = wait_for(lambda: _steadily_ok(routes[victim]), timeout=20, interval=0.1)
    record(f"{victim} SIGKILL -> restart -> route 200 (after process healthy)", recovered)
    record(f"{victim} restart to healthy process", process_up)


def test_frozen_backend_times_out_opens_breaker_and_spares_others(
    fp: FaultPlatform, api: httpx.Client, account: Account
) -> None:
    routes = _routes(api, account)
    stop = threading.Event()
    outcomes: list[tuple[int, float]] = []

    def load() -> None:
        with fp.client(timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                response = client.get("/v1/profiles/me", headers=account.headers)
                outcomes.append((response.status_code, time.perf_counter() - started))
                stop.wait(0.02)  # steady load, not a CPU-bound loop on the fast 503 path

    workers = [threading.Thread(target=load) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        # "Normal" is measured under the same load, with profile healthy.
        wallet_normal = median_latency(routes["payment"])
        fp.signal("profile", signal.SIGSTOP)
        # The budget of GET /v1/profiles/me is 2 s: the first calls end as 504 at it.
        wait_for(lambda: any(status == 504 for status, _ in outcomes), timeout=6)
        wait_for(
            lambda: 'gateway_circuit_breaker_state{backend="profile"} 2.0' in fp.metrics("gateway"),
            timeout=10,
        )
        response, seconds = timed(routes["profile"])
        _assert_problem(response, 503)
        assert response.headers["Retry-After"]
        assert seconds < 0.5
        wallet_frozen = median_latency(routes["payment"])
        # Within 2x of normal (plus 10 ms for timer noise on a loaded 2-core box).
        assert wallet_frozen <= 2 * wallet_normal + 0.010, (wallet_normal, wallet_frozen)
    finally:
        stop.set()
        fp.signal("profile", signal.SIGCONT)
        for worker in workers:
            worker.join(timeout=15)
    resumed = time.monotonic()
    wait_for(lambda: routes["profile"]().status_code == 200, timeout=15, interval=0.1)
    record("profile SIGSTOP -> SIGCONT -> route 200", time.monotonic() - resumed)
    timeouts = [seconds for status, seconds in outcomes if status == 504]
    assert timeouts, "no call ended at its deadline"
    assert max(timeouts) < 2.0 + 0.5, f"a 504 took {max(timeouts):.2f}s (budget 2 s)"
    assert {status for status, _ in outcomes} <= {200, 503, 504}
    print(
        f"LATENCY wallet median while profile frozen: {wallet_frozen * 1000:.1f} ms "
        f"(normal {wallet_normal * 1000:.1f} ms)"
    )


def test_database_outage_makes_only_its_service_unready(
    fp: FaultPlatform, api: httpx.Client, account: Account
) -> None:
    routes = _routes(api, account)
    proxy = fp.proxies["profile"]
    proxy.cut()
    try:
        wait_for(lambda: not fp.serving("profile"), timeout=10)
        # Liveness is not readiness: the process is alive and must not be restarted.
        assert _health(fp, "profile", "liveness") == health_pb2.HealthCheckResponse.SERVING
        response, seconds = timed(
            lambda: api.patch("/v1/profiles/me", json={"bio": "x"}, headers=account.headers)
        )
        _assert_problem(response, 503)
        assert seconds < 2.5
        # A read may still be answered from the profile cache (Redis): 200 or 503.
        assert routes["profile"]().status_code in (200, 503)
        assert routes["payment"]().status_code == 200
        assert routes["auth"]().status_code == 200
    finally:
        proxy.restore()
    ready = wait_for(lambda: fp.serving("profile"), timeout=15)
    recovered = wait_for(lambda: routes["profile"]().status_code == 200, timeout=15, interval=0.1)
    record("profile database back -> SERVING", ready)
    record("profile database back -> route 200", ready + recovered)


def _health(fp: FaultPlatform, name: str, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{fp.config.ports[name]}") as channel:
        return int(
            health_pb2_grpc.HealthStub(channel)
            .Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
            .status
        )


def test_pool_metrics_and_red_metrics_are_exposed(fp: FaultPlatform, api: httpx.Client) -> None:
    api.get("/v1/auth/jwks")
    gateway = fp.metrics("gateway")  # its own port: never on the public one
    assert 'http_requests_total{method="GET",route="/v1/auth/jwks",status="200"}' in gateway
    assert "gateway_circuit_breaker_state" in gateway
    for name in ("auth", "profile", "payment"):
        text = fp.metrics(name)
        assert "db_pool_connections_in_use" in text
        assert "grpc_server_handled_total" in text
    assert re.search(r'outbox_unsent_events\{outbox="outbox"\} \d', fp.metrics("relay"))
