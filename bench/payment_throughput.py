"""Throughput of the payment path: CreatePayment over a real gRPC channel.

Starts PaymentService in-process on a database (PAYMENT_BENCH_DATABASE_URL,
default a fresh SQLite file), funds N wallets, then runs a bounded number of
payments from T threads and prints payments/s and latency percentiles.

    .venv/bin/python bench/payment_throughput.py --threads 8 --payments 2000

Recorded on the 2-core dev machine (client and server in one process,
PostgreSQL 15 local, fsync on), every run ending with 0 reconcile violations:
    postgresql: 2000 payments, 8 threads, 50 wallets, one merchant:
                389 payments/s, p50 19.1 ms, p99 68.5 ms
    sqlite:     1000 payments, 8 threads, 50 wallets, one merchant:
                426 payments/s, p50 5.6 ms, p99 234.8 ms
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
from payment_service.config import PaymentSettings
from payment_service.entrypoints.app import (
    MIGRATIONS_DIR,
    database_from,
    grpc_service,
    reconcile_database,
)
from switchyard.payment.v1 import payment_pb2, payment_pb2_grpc
from switchyard_kit import IDEMPOTENCY_KEY, USER_ID_KEY, RunningServer, upgrade_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--wallets", type=int, default=50)
    args = parser.parse_args()
    url = os.environ.get("PAYMENT_BENCH_DATABASE_URL") or (
        f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    )
    upgrade_database(url, MIGRATIONS_DIR)
    settings = PaymentSettings(
        port=0, database_url=url, max_workers=args.threads * 2, db_pool_size=args.threads * 2
    ).model_copy(update={"port": 0})
    database = database_from(settings)
    server = RunningServer(grpc_service(database, settings), settings)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = payment_pb2_grpc.PaymentServiceStub(channel)
    users = [str(uuid.uuid4()) for _ in range(args.wallets)]
    for user in users:
        stub.TopUpWallet(
            payment_pb2.TopUpWalletRequest(amount=10**12, currency="EUR"),
            metadata=[(USER_ID_KEY, user), (IDEMPOTENCY_KEY, str(uuid.uuid4()))],
        )
    latencies: list[float] = []
    lock = threading.Lock()

    def pay(n: int) -> None:
        request = payment_pb2.CreatePaymentRequest(
            amount=250,
            currency="EUR",
            merchant_id="flash-sale",
            items=[payment_pb2.LineItem(sku=f"sku-{n % 10}", quantity=1, unit_amount=250)],
        )
        metadata = [(USER_ID_KEY, users[n % len(users)]), (IDEMPOTENCY_KEY, str(uuid.uuid4()))]
        began = time.perf_counter()
        stub.CreatePayment(request, metadata=metadata, timeout=10)
        with lock:
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(pay, range(args.payments)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    print(
        f"{database.dialect}: {args.payments} payments, {args.threads} threads, "
        f"{args.wallets} wallets, one merchant: {args.payments / elapsed:.0f} payments/s, "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )
    print(f"reconcile: {len(reconcile_database(database))} violation(s)")
    channel.close()
    server.stop()


if __name__ == "__main__":
    main()
