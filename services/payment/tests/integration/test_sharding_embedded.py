"""`make run`'s embedded default with several shards: one SQLite file per shard,
migrated and seeded by `migrate`, and payments routed to them."""

from __future__ import annotations

import uuid

import grpc
from payment_service.__main__ import main
from payment_service.adapters.resharding import move_slots
from payment_service.config import PaymentSettings
from payment_service.domain.model import TopUpWallet
from payment_service.domain.shards import slot_of
from payment_service.entrypoints.app import (
    grpc_service,
    handlers_from,
    reconcile_database,
    shards_from,
)
from switchyard.payment.v1 import payment_pb2, payment_pb2_grpc
from switchyard_kit import IDEMPOTENCY_KEY, USER_ID_KEY, RunningServer


def test_migrate_makes_one_sqlite_file_per_shard_and_seeds_the_map(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENT_SHARDS", "s0,s1")
    assert main(["migrate"]) == 0
    assert sorted(path.name for path in tmp_path.glob("*.db")) == ["payment-s0.db", "payment-s1.db"]
    settings = PaymentSettings(port=0)
    shards = shards_from(settings)
    assert shards.refresh().ranges() == {"s0": "0-511", "s1": "512-1023"}
    assert main(["migrate"]) == 0, "migrating again keeps the live map"
    shards.dispose()


def test_payments_of_users_on_two_sqlite_shards(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENT_SHARDS", "s0,s1")
    assert main(["migrate"]) == 0
    settings = PaymentSettings(port=0)
    shards = shards_from(settings)
    server = RunningServer(grpc_service(shards, settings), settings)
    server.start()
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = payment_pb2_grpc.PaymentServiceStub(channel)
        placed: dict[str, int] = {"s0": 0, "s1": 0}
        while min(placed.values()) < 2:
            user = str(uuid.uuid4())
            placed[shards.route(user)[0]] += 1
            metadata = [(USER_ID_KEY, user), (IDEMPOTENCY_KEY, str(uuid.uuid4()))]
            stub.TopUpWallet(
                payment_pb2.TopUpWalletRequest(amount=500, currency="EUR"),
                metadata=metadata,
                timeout=10,
            )
        channel.close()
    finally:
        server.stop()
    assert reconcile_database(shards) == []
    shards.dispose()


def test_a_slot_moves_between_sqlite_shards(tmp_path, monkeypatch):
    """On SQLite the freeze is the source file's write lock; the move and the
    checks are the same."""
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENT_SHARDS", "s0,s1")
    assert main(["migrate"]) == 0
    settings = PaymentSettings(port=0)
    shards = shards_from(settings)
    handlers = handlers_from(shards, settings)
    user = next(u for u in (str(uuid.uuid4()) for _ in range(10_000)) if slot_of(u) < 512)
    handlers.top_up(TopUpWallet(user_id=user, amount=900, currency="EUR"), str(uuid.uuid4()))
    moves = move_slots(shards_from(settings), [slot_of(user)], "s1")
    assert [move.users for move in moves] == [1]
    assert shards.route(user)[0] == "s0", "this server's map is stale..."
    assert handlers.get_wallet(user) == [("EUR", 900)], "...and the slot check re-routes it"
    assert shards.route(user)[0] == "s1"
    assert reconcile_database(shards) == []
    shards.dispose()
