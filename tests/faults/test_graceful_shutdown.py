"""SIGTERM during a steady load: the gateway (replaced by a new one on the same
port, as in a rolling update) and one of two payment replicas. A client that
retries connection errors sees no failed request, and no payment is lost or
made twice."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from e2e.harness import Account, free_port
from switchyard_dev.launcher import Component, PlatformConfig

from faults.platform import (
    FaultPlatform,
    new_account,
    pay,
    record,
    start_fault_platform,
    top_up,
    wait_for,
)

TOP_UP = 1_000_000
REPLICA_ENV = {"PAYMENT_SHUTDOWN_DELAY_SECONDS": "1", "PAYMENT_GRACE_SECONDS": "5"}


def _second_payment(config: PlatformConfig, env: dict[str, str]) -> list[Component]:
    port = free_port()
    config.ports["payment-b"] = port
    return [
        Component(
            name="payment-b",
            argv=[config.python, "-m", "payment_service", "serve"],
            env={**env, **REPLICA_ENV, "PAYMENT_PORT": str(port), "PAYMENT_METRICS_PORT": "0"},
            health_grpc=f"127.0.0.1:{port}",
        )
    ]


@pytest.fixture(scope="module")
def fp(
    tmp_path_factory: pytest.TempPathFactory,
    create_postgres_database: Callable[[str], str],
    redis_url: str,
) -> Iterator[FaultPlatform]:
    holder: dict[str, int] = {}

    def extra(config: PlatformConfig, env: dict[str, str]) -> list[Component]:
        components = _second_payment(config, env)
        holder["b"] = config.ports["payment-b"]
        return components

    running = start_fault_platform(
        tmp_path_factory.mktemp("graceful"),
        create_postgres_database,
        redis_url,
        env={"GATEWAY_WORKERS": "2"},
        component_env={"payment": REPLICA_ENV},
        extra_components=extra,
        gateway_env=lambda config: {
            "PAYMENT_TARGET": (f"ipv4:127.0.0.1:{config.ports['payment']},127.0.0.1:{holder['b']}")
        },
    )
    yield running
    running.stop()


@dataclass
class Client:
    """Retries connection errors (never anything else); a payment is retried
    with its Idempotency-Key, so a retry can never pay twice."""

    api: httpx.Client
    account: Account
    failures: list[str] = field(default_factory=list)
    payments: dict[str, int] = field(default_factory=dict)
    longest_retry: float = 0.0

    def _send(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        started = time.monotonic()
        while True:
            try:
                response = call()
            except httpx.TransportError:
                if time.monotonic() - started > 20:
                    raise
                time.sleep(0.05)
                continue
            self.longest_retry = max(self.longest_retry, time.monotonic() - started)
            return response

    def step(self) -> None:
        key = uuid.uuid4().hex
        amount = 100 + len(self.payments)
        response = self._send(lambda: pay(self.api, self.account, key, amount))
        if response.status_code == 201:
            self.payments[response.json()["id"]] = amount
        else:
            self.failures.append(f"POST /v1/payments {response.status_code} {response.text}")
        wallet = self._send(lambda: self.api.get("/v1/wallet", headers=self.account.headers))
        if wallet.status_code != 200:
            self.failures.append(f"GET /v1/wallet {wallet.status_code} {wallet.text}")


def _listeners(port: int) -> int:
    """Sockets listening on `port` (more while the old and new gateway overlap)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1].endswith(f":{port:04X}") and row[3] == "0A")


def _balance(api: httpx.Client, account: Account) -> int:
    wallet = api.get("/v1/wallet", headers=account.headers).json()
    balances = wallet.get("balances", [])
    return int(next(b["amount"] for b in balances if b["currency"] == "EUR"))


def test_sigterm_under_load_fails_no_request_and_loses_no_payment(fp: FaultPlatform) -> None:
    with fp.client() as setup:
        accounts = [new_account(setup) for _ in range(3)]
        for account in accounts:
            top_up(setup, account, TOP_UP)
    clients = [Client(httpx.Client(base_url=fp.base_url, timeout=10), a) for a in accounts]
    stop = threading.Event()

    def run(client: Client) -> None:
        while not stop.is_set():
            client.step()

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        # A payment replica drains: NOT_SERVING first, then finishes its calls.
        replica = fp.platform.processes["payment"]
        replica.send_signal(signal.SIGTERM)
        assert replica.wait(timeout=15) == 0
        fp.platform.stop_component("payment")
        time.sleep(1.0)
        fp.restart("payment")
        # The gateway, as in a rolling update: a new one binds the same port
        # (SO_REUSEPORT), then the old one gets SIGTERM and drains.
        replaced = time.monotonic()
        listening = _listeners(fp.config.ports["gateway"])
        fp.platform.start_component(
            dataclasses.replace(fp.components["gateway"], name="gateway-new", prepare=[])
        )
        wait_for(
            lambda: _listeners(fp.config.ports["gateway"]) > listening, timeout=30, interval=0.1
        )
        record("new gateway listening beside the old one", time.monotonic() - replaced)
        old_gateway = fp.platform.processes.pop("gateway")
        old_gateway.send_signal(signal.SIGTERM)
        assert old_gateway.wait(timeout=30) == 0
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    if old_gateway.stdout is not None:
        old_gateway.stdout.close()
    for client in clients:
        client.api.close()
    failures = [failure for client in clients for failure in client.failures]
    assert not failures, failures[:5]
    record(
        "longest a client retried connection errors",
        max(client.longest_retry for client in clients),
    )
    with fp.client() as check:
        for client in clients:
            assert client.payments, "the load made no payment"
            for payment_id in client.payments:
                response = check.get(f"/v1/payments/{payment_id}", headers=client.account.headers)
                assert response.status_code == 200, response.text
            # Each payment was booked exactly once.
            expected = TOP_UP - sum(client.payments.values())
            wait_for(lambda c=client, e=expected: _balance(check, c.account) == e, timeout=5)
