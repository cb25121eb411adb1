"""Fixtures: a migrated payment database (SQLite and PostgreSQL) and a real
in-process gRPC server with a client that sends the gateway's metadata."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from payment_service.config import PaymentSettings
from payment_service.entrypoints.app import MIGRATIONS_DIR, database_from, grpc_service
from switchyard.payment.v1 import payment_pb2, payment_pb2_grpc
from switchyard_kit import (
    IDEMPOTENCY_KEY,
    USER_ID_KEY,
    Database,
    RunningServer,
    status_details,
    upgrade_database,
)

# Where a test's payment database lives: a SQLite file, PostgreSQL directly, or
# PostgreSQL through a PgBouncer in prod's transaction pooling
# (switchyard_dev.pgbouncer, k8s/overlays/prod/pgbouncer.ini).
BACKENDS = {
    "sqlite": pytest.param("sqlite", id="sqlite"),
    "postgres": pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    "pgbouncer": pytest.param("pgbouncer", id="pgbouncer", marks=pytest.mark.postgres),
}
DEFAULT_BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run on these payment databases (sqlite, postgres, pgbouncer) "
        f"instead of {', '.join(DEFAULT_BACKENDS)}",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the payment database runs once per backend."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else DEFAULT_BACKENDS
    metafunc.parametrize("backend", [BACKENDS[name] for name in names])


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'payment.db'}"
        upgrade_database(url, MIGRATIONS_DIR)
        return url
    if backend == "pgbouncer":
        # Migrated directly, served through PgBouncer (as prod: migration-url, url).
        through: Callable[[str, Path], str] = request.getfixturevalue("create_pgbouncer_database")
        return through("payment", MIGRATIONS_DIR)
    create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
    url = create("payment")
    upgrade_database(url, MIGRATIONS_DIR)
    return url


@pytest.fixture
def settings(database_url: str) -> PaymentSettings:
    base = PaymentSettings(
        port=0,
        database_url=database_url,
        max_workers=32,
        max_concurrent_rpcs=256,
        db_pool_size=32,
        db_max_overflow=8,
        db_pool_timeout_seconds=10,
        grace_seconds=1,
        readiness_interval_seconds=0.5,
    )
    return base.model_copy(update={"port": 0})


@pytest.fixture
def database(settings: PaymentSettings) -> Iterator[Database]:
    db = database_from(settings)
    yield db
    db.dispose()


class Client:
    """PaymentService over a real channel, as the gateway calls it."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = payment_pb2_grpc.PaymentServiceStub(self.channel)

    @staticmethod
    def metadata(user: str, key: str | None) -> list[tuple[str, str]]:
        pairs = [(USER_ID_KEY, user)]
        if key is not None:
            pairs.append((IDEMPOTENCY_KEY, key))
        return pairs

    def top_up(self, user: str, amount: int, currency: str = "EUR", key: str | None = "new") -> Any:
        key = str(uuid.uuid4()) if key == "new" else key
        return self.stub.TopUpWallet(
            payment_pb2.TopUpWalletRequest(amount=amount, currency=currency),
            metadata=self.metadata(user, key),
            timeout=10,
        ).top_up

    def pay(
        self,
        user: str,
        amount: int,
        currency: str = "EUR",
        *,
        merchant: str = "shop-1",
        items: list[tuple[str, int, int]] | None = None,
        key: str | None = "new",
    ) -> Any:
        key = str(uuid.uuid4()) if key == "new" else key
        request = payment_pb2.CreatePaymentRequest(
            amount=amount,
            currency=currency,
            merchant_id=merchant,
            items=[
                payment_pb2.LineItem(sku=s, quantity=q, unit_amount=u) for s, q, u in items or []
            ],
        )
        return self.stub.CreatePayment(
            request, metadata=self.metadata(user, key), timeout=10
        ).payment

    def refund(
        self,
        user: str,
        payment_id: str,
        amount: int | None = None,
        *,
        currency: str = "",
        key: str | None = "new",
    ) -> Any:
        key = str(uuid.uuid4()) if key == "new" else key
        request = payment_pb2.RefundPaymentRequest(payment_id=payment_id, currency=currency)
        if amount is not None:
            request.amount = amount
        return self.stub.RefundPayment(request, metadata=self.metadata(user, key), timeout=10)

    def balances(self, user: str) -> dict[str, int]:
        wallet = self.stub.GetWallet(
            payment_pb2.GetWalletRequest(), metadata=self.metadata(user, None), timeout=5
        ).wallet
        return {b.currency: b.amount for b in wallet.balances}

    def get(self, user: str, payment_id: str) -> Any:
        return self.stub.GetPayment(
            payment_pb2.GetPaymentRequest(payment_id=payment_id),
            metadata=self.metadata(user, None),
            timeout=5,
        ).payment

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def serve(database: Database) -> Iterator[Callable[[PaymentSettings], Client]]:
    """`serve(settings)`: a server on the test database with these settings, and its client."""
    running: list[tuple[RunningServer, Client]] = []

    def start(settings: PaymentSettings) -> Client:
        server = RunningServer(grpc_service(database, settings), settings)
        server.start()
        running.append((server, Client(f"127.0.0.1:{server.port}")))
        return running[-1][1]

    yield start
    for server, client in running:
        client.close()
        server.stop()


@pytest.fixture
def client(serve: Callable[[PaymentSettings], Client], settings: PaymentSettings) -> Client:
    return serve(settings)


def new_user() -> str:
    return str(uuid.uuid4())


def error_info(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """(code, ErrorInfo reason, {field: description}) of a failed call."""
    assert isinstance(error, grpc.Call)
    status = status_details(error)
    reason, fields = "", {}
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = {v.field: v.description for v in bad.field_violations}
    return error.code(), reason, fields


ErrorInfo = Callable[[grpc.RpcError], tuple[grpc.StatusCode, str, dict[str, str]]]


@pytest.fixture
def rpc_error() -> ErrorInfo:
    """`rpc_error(exc) -> (code, reason, field violations)`."""
    return error_info


@pytest.fixture
def user() -> str:
    return new_user()


def run_random_operations(
    client: Client,
    rpc_error: ErrorInfo,
    *,
    seed: int,
    operations: int,
    threads: int,
    users: list[str] | None = None,
) -> tuple[float, dict[str, int]]:
    """Top up 20 users (or `users`), then run `operations` random payments,
    refunds and top-ups on `threads` threads: (seconds, {outcome: count})."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible test plan, not a secret
    users = users or [str(uuid.uuid4()) for _ in range(20)]
    for index, user in enumerate(users):
        client.top_up(user, 5_000 + 500 * index, "EUR")
        if index % 4 == 0:
            client.top_up(user, 3_000, "USD")
    plan = []
    for _ in range(operations):
        user = rng.choice(users)
        roll = rng.random()
        if roll < 0.55:
            plan.append(("pay", user, rng.randint(1, 900), rng.choice(["EUR", "EUR", "USD"])))
        elif roll < 0.85:
            plan.append(("refund", user, rng.choice([None, rng.randint(1, 400)]), ""))
        else:
            plan.append(("top_up", user, rng.randint(1, 700), "EUR"))
    paid: dict[str, list[str]] = {user: [] for user in users}
    lock = threading.Lock()
    outcomes: dict[str, int] = {}

    def run(step: tuple[str, str, int | None, str]) -> None:
        kind, user, amount, currency = step
        try:
            if kind == "pay":
                payment = client.pay(user, amount, currency, merchant=f"m-{amount % 3}")
                with lock:
                    paid[user].append(payment.id)
            elif kind == "refund":
                with lock:
                    choices = list(paid[user])
                if not choices:
                    return
                client.refund(user, rng_choice(choices), amount)
            else:
                client.top_up(user, amount, currency)
            result = "OK"
        except grpc.RpcError as error:
            code, reason, _ = rpc_error(error)
            result = "INTERNAL" if code == grpc.StatusCode.INTERNAL else reason
        with lock:
            outcomes[result] = outcomes.get(result, 0) + 1

    local = random.Random(seed + 1)  # noqa: S311 - reproducible, not a secret
    choice_lock = threading.Lock()

    def rng_choice(items: list[str]) -> str:
        with choice_lock:
            return local.choice(items)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, plan))
    return time.perf_counter() - began, outcomes


@pytest.fixture
def random_operations(client: Client) -> Callable[..., tuple[float, dict[str, int]]]:
    """`random_operations(seed=, operations=, threads=, users=None)` through `client`."""

    def run(**options: Any) -> tuple[float, dict[str, int]]:
        return run_random_operations(client, error_info, **options)

    return run
