"""Throughput of the payment path: CreatePayment over a real gRPC channel, on one
database and on 4 shards, side by side in one run.

Starts PaymentService in-process per configuration (`--shards 1,4`: one
PostgreSQL database; 4 databases as shards s0-s3 on the same server), funds N
wallets on each, then runs rounds of a bounded number of payments from T
threads, the configurations interleaved round by round (machine drift cancels
in the ratio), and prints payments/s and latency percentiles per
configuration, then reconcile (on each shard and across them).

    .venv/bin/python bench/payment_throughput.py --threads 8 --payments 1000 --rounds 3

On one machine the 4 shards share one PostgreSQL server and the same cores:
the ratio shows what routing by user costs (the slot check that opens every
transaction, more connections), not what sharding buys; that is in
bench/CAPACITY.md ("Payment shards"). PAYMENT_BENCH_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) names the server; the databases
are created and dropped.

Recorded on the 2-core dev machine (client and server in one process,
PostgreSQL 15 local, fsync on), every run ending with 0 reconcile violations:
    postgresql: 2000 payments, 8 threads, 50 wallets, one merchant:
                389 payments/s, p50 19.1 ms, p99 68.5 ms
    sqlite:     1000 payments, 8 threads, 50 wallets, one merchant:
                426 payments/s, p50 5.6 ms, p99 234.8 ms
    1 vs 4 shards, 8 threads, 3 x 800 payments interleaved (2026-11-30, loaded):
                0.79x-0.91x payments/s (e.g. 320 vs 277, p50 21.0 vs 25.5 ms),
                reconcile clean
(bench/CAPACITY.md, "Payment shards").
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from payment_service.adapters.shards import ShardSet
from payment_service.config import PaymentSettings
from payment_service.entrypoints.app import (
    MIGRATIONS_DIR,
    grpc_service,
    reconcile_database,
    shards_from,
)
from sqlalchemy import create_engine, text
from switchyard.payment.v1 import payment_pb2, payment_pb2_grpc
from switchyard_kit import IDEMPOTENCY_KEY, USER_ID_KEY, RunningServer, upgrade_database

ADMIN_URL = os.environ.get(
    "PAYMENT_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Configuration:
    shards: int
    databases: list[str]
    storage: ShardSet
    server: RunningServer
    stub: payment_pb2_grpc.PaymentServiceStub
    channel: grpc.Channel
    users: list[str]
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    payments: int = 0


def create_databases(count: int) -> list[str]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:8]
    names = [f"bench_pay_{count}_{index}_{suffix}" for index in range(count)]
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return [ADMIN_URL.rsplit("/", 1)[0] + f"/{name}" for name in names]


def drop_databases(urls: list[str]) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for url in urls:
            name = url.rsplit("/", 1)[1]
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def start(shards: int, threads: int, wallets: int) -> Configuration:
    urls = create_databases(shards)
    for url in urls:
        upgrade_database(url, MIGRATIONS_DIR)
    settings = PaymentSettings(
        port=0,
        database_url=urls[0],
        shards=",".join(f"s{i}={url}" for i, url in enumerate(urls)) if shards > 1 else "",
        max_workers=threads * 2,
        db_pool_size=threads * 2,
    ).model_copy(update={"port": 0})
    storage = shards_from(settings)
    storage.seed_ownership()
    server = RunningServer(grpc_service(storage, settings), settings)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = payment_pb2_grpc.PaymentServiceStub(channel)
    users = [str(uuid.uuid4()) for _ in range(wallets)]
    for user in users:
        stub.TopUpWallet(
            payment_pb2.TopUpWalletRequest(amount=10**12, currency="EUR"),
            metadata=[(USER_ID_KEY, user), (IDEMPOTENCY_KEY, str(uuid.uuid4()))],
        )
    return Configuration(shards, urls, storage, server, stub, channel, users)


def run_round(config: Configuration, payments: int, threads: int) -> None:
    lock = threading.Lock()

    def pay(n: int) -> None:
        request = payment_pb2.CreatePaymentRequest(
            amount=250,
            currency="EUR",
            merchant_id="flash-sale",
            items=[payment_pb2.LineItem(sku=f"sku-{n % 10}", quantity=1, unit_amount=250)],
        )
        user = config.users[n % len(config.users)]
        metadata = [(USER_ID_KEY, user), (IDEMPOTENCY_KEY, str(uuid.uuid4()))]
        began = time.perf_counter()
        config.stub.CreatePayment(request, metadata=metadata, timeout=30)
        with lock:
            config.latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(pay, range(payments)))
    config.seconds += time.perf_counter() - began
    config.payments += payments


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--payments", type=int, default=1000, help="per round")
    parser.add_argument("--wallets", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shards", default="1,4", help="comma-separated shard counts")
    args = parser.parse_args()
    configs = [start(int(count), args.threads, args.wallets) for count in args.shards.split(",")]
    try:
        for config in configs:  # warm-up, unmeasured
            run_round(config, args.payments // 5, args.threads)
            config.latencies.clear()
            config.seconds = config.payments = 0
        for round_ in range(args.rounds):
            for config in configs:
                run_round(config, args.payments, args.threads)
                print(f"round {round_ + 1}, {config.shards} shard(s): {config.payments} payments")
        rates = {}
        for config in configs:
            latencies = sorted(config.latencies)
            rates[config.shards] = config.payments / config.seconds
            violations = reconcile_database(config.storage)
            print(
                f"postgresql, {config.shards} shard(s): {config.payments} payments, "
                f"{args.threads} threads, {args.wallets} wallets, one merchant: "
                f"{rates[config.shards]:.0f} payments/s, "
                f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
                f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms; "
                f"reconcile: {len(violations)} violation(s)"
            )
        if len(rates) > 1:
            first, *others = rates
            for other in others:
                print(f"{other} shards / {first}: {rates[other] / rates[first]:.2f}x payments/s")
    finally:
        for config in configs:
            config.channel.close()
            config.server.stop()
            config.storage.dispose()
            drop_databases(config.databases)


if __name__ == "__main__":
    main()
