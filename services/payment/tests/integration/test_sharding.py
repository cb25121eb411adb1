"""Payment sharded by user, on 4 real PostgreSQL databases: each user's money on
the shard of the user's slot, the concurrency suite over the shards, merchant
balances summed over the shards, and the relay's per-user order."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest
from payment_service.__main__ import main
from payment_service.adapters import resharding
from payment_service.adapters import tables as t
from payment_service.adapters.reconciliation import merchant_balances
from payment_service.adapters.resharding import move_slots
from payment_service.adapters.shards import ShardSet
from payment_service.adapters.unit_of_work import UserUnitOfWork
from payment_service.config import PaymentSettings
from payment_service.domain.ledger import wallet
from payment_service.domain.shards import slot_of
from payment_service.entrypoints.app import (
    MIGRATIONS_DIR,
    cleanup_database,
    payment_relay,
    reconcile_database,
    shards_from,
)
from payment_service.entrypoints.relay_loop import run_relays
from sqlalchemy import func, select
from switchyard.events.v1 import events_pb2
from switchyard_kit import Aborted, upgrade_database, utc_now

pytestmark = pytest.mark.postgres

SHARDS = 4


@pytest.fixture
def settings(create_postgres_database) -> PaymentSettings:
    """4 uniquely named PostgreSQL databases as shards s0..s3, migrated and seeded."""
    urls = {f"s{index}": create_postgres_database(f"payment_s{index}") for index in range(SHARDS)}
    for url in urls.values():
        upgrade_database(url, MIGRATIONS_DIR)
    return PaymentSettings(
        port=0,
        shards=",".join(f"{name}={url}" for name, url in urls.items()),
        max_workers=32,
        max_concurrent_rpcs=256,
        db_pool_size=16,
        db_max_overflow=4,
        db_pool_timeout_seconds=10,
        grace_seconds=1,
        readiness_interval_seconds=0.5,
    )


@pytest.fixture
def database(settings: PaymentSettings) -> Iterator[ShardSet]:
    """The conftest's `database`, sharded: the server fixtures serve every shard."""
    shards = shards_from(settings)
    assert shards.seed_ownership()
    yield shards
    shards.dispose()


def users_per_shard(shards: ShardSet, count: int) -> dict[str, list[str]]:
    """`count` fresh user ids on each shard."""
    found: dict[str, list[str]] = {name: [] for name, _ in shards}
    while any(len(users) < count for users in found.values()):
        user = str(uuid.uuid4())
        name, _ = shards.route(user)
        if len(found[name]) < count:
            found[name].append(user)
    return found


def count(shards: ShardSet, statement) -> dict[str, int]:
    """{shard: the statement's count on it}."""
    totals = {}
    for name, database in shards:
        with database.session() as session:
            totals[name] = int(session.execute(statement).scalar_one())
    return totals


def test_a_users_money_lives_on_the_shard_of_the_users_slot(client, database):
    per_shard = users_per_shard(database, 2)
    for users in per_shard.values():
        for user in users:
            client.top_up(user, 1_000)
            payment = client.pay(user, 300, merchant="shop-1")
            client.refund(user, payment.id, 100)
    for name, users in per_shard.items():
        for user in users:
            where_payments = count(
                database,
                select(func.count()).select_from(t.payments).where(t.payments.c.user_id == user),
            )
            where_keys = count(
                database,
                select(func.count())
                .select_from(t.idempotency_keys)
                .where(t.idempotency_keys.c.user_id == user),
            )
            where_wallet = count(
                database,
                select(func.count())
                .select_from(t.balances)
                .where(t.balances.c.account_id == wallet(user, "EUR").id),
            )
            assert where_payments == {other: int(other == name) for other in where_payments}
            assert where_keys == {other: 3 * int(other == name) for other in where_keys}
            assert where_wallet == {other: int(other == name) for other in where_wallet}
            assert client.balances(user) == {"EUR": 800}
    assert reconcile_database(database) == []


def test_100_concurrent_identical_requests_charge_once_on_4_shards(client, database):
    per_shard = users_per_shard(database, 1)
    users = [users[0] for users in per_shard.values()]
    keys = {user: str(uuid.uuid4()) for user in users}
    for user in users:
        client.top_up(user, 100_000)
    start = threading.Barrier(100)

    def pay(index: int) -> tuple[str, bytes]:
        user = users[index % SHARDS]
        start.wait()
        payment = client.pay(user, 1_234, items=[("sku-1", 1, 1_234)], key=keys[user])
        return user, payment.SerializeToString()

    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(pool.map(pay, range(100)))
    for user in users:
        assert len({body for who, body in responses if who == user}) == 1
        assert client.balances(user) == {"EUR": 100_000 - 1_234}
    payments = count(database, select(func.count()).select_from(t.payments))
    assert payments == dict.fromkeys(per_shard, 1), "one charge per user, on the user's shard"
    assert reconcile_database(database) == []


def test_a_racing_wallet_never_overdraws_on_a_sharded_store(client, database, rpc_error):
    """60 threads race for a wallet that can pay 25 of them, beside other shards' traffic."""
    per_shard = users_per_shard(database, 1)
    racer, *others = [users[0] for users in per_shard.values()]
    client.top_up(racer, 2_500)
    for other in others:
        client.top_up(other, 10_000)
    start = threading.Barrier(60)

    def pay(index: int) -> str:
        start.wait()
        if index % 4:
            client.pay(others[index % 3], 10)
        try:
            client.pay(racer, 100)
        except grpc.RpcError as error:
            return rpc_error(error)[1]
        return "OK"

    with ThreadPoolExecutor(max_workers=60) as pool:
        outcomes = list(pool.map(pay, range(60)))
    assert outcomes.count("OK") == 25
    assert outcomes.count("INSUFFICIENT_FUNDS") == 35
    assert client.balances(racer) == {"EUR": 0}
    assert reconcile_database(database) == []


def test_1000_random_operations_over_4_shards_keep_every_shards_books(database, random_operations):
    users = [user for users in users_per_shard(database, 5).values() for user in users]
    elapsed, outcomes = random_operations(seed=20251130, operations=1_000, threads=16, users=users)
    assert "INTERNAL" not in outcomes
    assert outcomes.get("OK", 0) > 1_000 // 3
    violations = reconcile_database(database)
    assert violations == [], [str(v) for v in violations]
    payments = count(database, select(func.count()).select_from(t.payments))
    assert all(payments.values()), f"every shard took payments: {payments}"
    print(f"1000 random operations over {SHARDS} shards: {elapsed:.2f}s, {outcomes}, {payments}")


def test_a_merchants_balance_is_the_sum_of_its_clearing_accounts_over_the_shards(client, database):
    per_shard = users_per_shard(database, 2)
    expected = 0
    for index, user in enumerate(user for users in per_shard.values() for user in users):
        client.top_up(user, 5_000)
        payment = client.pay(user, 1_000 + index, merchant="flash-shop")
        client.pay(user, 7, merchant="other-shop")
        client.refund(user, payment.id, 100)
        expected += 1_000 + index - 100
    balances = merchant_balances(database)
    assert balances[("flash-shop", "EUR")] == expected
    assert balances[("other-shop", "EUR")] == 7 * 2 * SHARDS
    # Each shard's clearing account holds only its own payers' share, and each
    # shard's ledger balances on its own.
    shares = {}
    for name, shard in database:
        with shard.session() as session:
            shares[name] = session.execute(
                select(func.sum(t.ledger_entries.c.amount))
                .join(t.accounts, t.accounts.c.id == t.ledger_entries.c.account_id)
                .where(t.accounts.c.owner == "flash-shop")
            ).scalar_one()
            assert session.execute(select(func.sum(t.ledger_entries.c.amount))).scalar_one() == 0
    assert all(share > 0 for share in shares.values())
    assert sum(shares.values()) == expected
    assert reconcile_database(database) == []


def test_reconcile_finds_money_on_the_wrong_shard(client, database):
    """A user's wallet written to a shard that does not hold the user's slot
    (a bad move, a routing bug) breaks no single shard's books: only the
    cross-shard check sees it."""
    user = users_per_shard(database, 1)["s0"][0]
    client.top_up(user, 500)
    wrong = database.databases["s1"]
    now = utc_now()
    with wrong.session() as session, session.begin():
        account = wallet(user, "EUR")
        session.execute(
            t.accounts.insert().values(
                id=account.id, kind="wallet", owner=user, currency="EUR", created_at=now
            )
        )
    checks = {violation.check for violation in reconcile_database(database)}
    assert checks == {"user_on_slot_shard"}


class Collected:
    """An EventPublisher that keeps what it is given (stands in for Redis)."""

    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []
        self.lock = threading.Lock()

    def publish(self, events) -> None:
        with self.lock:
            self.events.extend(events)

    def close(self) -> None:
        pass


def test_the_relays_of_4_shards_keep_each_users_order(client, database):
    """Users on every shard write concurrently; one relay process turning a
    relay per shard publishes each user's events in the order they happened."""
    users = [user for users in users_per_shard(database, 3).values() for user in users]

    def history(user: str) -> list[str]:
        client.top_up(user, 1_000)
        first = client.pay(user, 100)
        client.refund(user, first.id, 40)
        second = client.pay(user, 200)
        client.refund(user, second.id)
        return [first.id, second.id]

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(history, users))
    publisher = Collected()
    relays = [
        payment_relay(shard, publisher, batch_size=3, poll_interval_seconds=0.01)
        for _, shard in database
    ]
    stop = threading.Event()
    loop = threading.Thread(target=run_relays, args=(relays, stop))
    loop.start()
    deadline = time.monotonic() + 60
    while len(publisher.events) < 5 * len(users) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    loop.join(10)
    per_user: dict[str, list[str]] = defaultdict(list)
    for event in publisher.events:
        per_user[event.key].append(event.type.rsplit(".", 1)[-1])
    assert len(publisher.events) == 5 * len(users)
    expected = [
        "WalletToppedUp",
        "PaymentSucceeded",
        "PaymentRefunded",
        "PaymentSucceeded",
        "PaymentRefunded",
    ]
    assert dict(per_user) == dict.fromkeys(users, expected)
    unsent = count(
        database, select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
    )
    assert unsent == {name: 0 for name, _ in database}


def users_in_slots(slots: range, count: int) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        user = str(uuid.uuid4())
        if slot_of(user) in slots:
            found.append(user)
    return found


def test_a_reshard_under_concurrent_payments_loses_and_doubles_nothing(client, database, settings):
    """Slots 0-31 move from s0 to s1 while 8 threads pay from wallets in those
    slots and elsewhere: no request fails, every payment exists once, every
    wallet holds what it should, and reconcile is clean on and across shards."""
    moving = range(0, 32)
    movers = users_in_slots(moving, 8)
    stayers = [user for users in users_per_shard(database, 2).values() for user in users]
    everyone = movers + stayers
    for user in everyone:
        client.top_up(user, 1_000_000)
    paid: list[tuple[str, str, int]] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def pay(worker: int) -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            user = everyone[(worker * 7 + turn) % len(everyone)]
            amount = 1 + (turn % 50)
            try:
                payment = client.pay(user, amount, merchant=f"m-{turn % 3}")
            except grpc.RpcError as error:
                with lock:
                    failures.append(f"{error.code()}: {error.details()}")
                continue
            with lock:
                paid.append((user, payment.id, amount))

    workers = [threading.Thread(target=pay, args=(index,)) for index in range(8)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    mover = shards_from(settings)  # the reshard command's own view, as another process
    began = time.monotonic()
    moves = move_slots(mover, moving, "s1")
    duration = time.monotonic() - began
    time.sleep(1.0)
    stop.set()
    for worker in workers:
        worker.join(30)
    mover.dispose()

    assert failures == []
    assert {move.slot for move in moves} == set(moving)
    assert database.refresh().ranges()["s1"] == "0-31,256-511"
    ids: dict[str, int] = defaultdict(int)
    for _, shard in database:
        with shard.session() as session:
            for (payment_id,) in session.execute(select(t.payments.c.id)):
                ids[payment_id] += 1
    assert sorted(ids) == sorted(payment_id for _, payment_id, _ in paid), "none lost, none extra"
    assert set(ids.values()) == {1}, "no payment on two shards"
    for user in everyone:
        spent = sum(amount for who, _, amount in paid if who == user)
        assert client.balances(user) == {"EUR": 1_000_000 - spent}
    on_s0 = count(
        database,
        select(func.count()).select_from(t.payments).where(t.payments.c.user_id.in_(movers)),
    )
    assert on_s0["s0"] == 0
    assert on_s0["s1"] == len([1 for who, _, _ in paid if who in movers])
    violations = reconcile_database(database)
    assert violations == [], [str(v) for v in violations]
    pauses = sorted(move.pause_seconds for move in moves)
    print(
        f"reshard of {len(moves)} slots under load: {duration:.2f}s, {len(paid)} payments, "
        f"pause per slot median {pauses[len(pauses) // 2] * 1000:.1f} ms,"
        f" max {pauses[-1] * 1000:.1f} ms"
    )


def test_the_reshard_command_moves_slots_and_prints_the_live_map(
    client, database, settings, monkeypatch, capsys
):
    monkeypatch.setenv("PAYMENT_SHARDS", settings.shards)
    user = users_in_slots(range(4, 6), 1)[0]
    client.top_up(user, 700)
    assert main(["reshard", "--move-slots", "4-5", "--to", "s3"]) == 0
    assert "moved 2 slot(s) to s3" in capsys.readouterr().out
    assert main(["reshard", "--status"]) == 0
    assert "s3: 4-5,768-1023" in capsys.readouterr().out
    assert client.balances(user) == {"EUR": 700}, "the server found the user on s3"
    assert main(["reshard", "--move-slots", "4", "--to", "s9"]) == 1
    assert main(["reconcile"]) == 0
    assert "every invariant holds" in capsys.readouterr().out


def test_the_key_clean_up_goes_over_every_shard(client, database):
    per_shard = users_per_shard(database, 1)
    for users in per_shard.values():
        client.top_up(users[0], 100)
    for _, shard in database:
        with shard.session() as session, session.begin():
            session.execute(
                t.idempotency_keys.update().values(expires_at=utc_now() - timedelta(seconds=1))
            )
    assert cleanup_database(database) == SHARDS
    assert count(database, select(func.count()).select_from(t.idempotency_keys)) == dict.fromkeys(
        per_shard, 0
    )


class Crash(Exception):
    """The reshard process dying at a chosen step."""


def test_a_reshard_that_died_before_the_source_let_go_is_undone_and_redone(
    client, database, settings, monkeypatch
):
    """Killed after the target committed its copy, before the source deleted
    its own: the source still holds the slot and payments carry on there; the
    same command run again drops the stale copy and moves the slot once."""
    user = users_in_slots(range(7, 8), 1)[0]
    client.top_up(user, 1_000)
    client.pay(user, 100)

    def die(*_: object) -> None:
        raise Crash

    mover = shards_from(settings)
    with monkeypatch.context() as patch:
        patch.setattr(resharding, "delete_slot_rows", die)
        with pytest.raises(Crash):
            move_slots(mover, [7], "s2")
    client.pay(user, 50)
    assert client.balances(user) == {"EUR": 850}, "the source still holds the slot"
    # Until then reconcile sees the stale copy on the target.
    assert {v.check for v in reconcile_database(database)} == {
        "user_on_slot_shard",
        "movement_on_one_shard",
    }
    assert [move.slot for move in move_slots(mover, [7], "s2")] == [7]
    assert client.balances(user) == {"EUR": 850}
    client.pay(user, 50)
    assert client.balances(user) == {"EUR": 800}
    assert reconcile_database(database) == []
    mover.dispose()


def test_a_reshard_that_died_after_the_source_let_go_is_finished(
    client, database, settings, monkeypatch
):
    """Killed between the source's commit and the target's hand-over: no shard
    holds the slot (writers wait); the same command run again finishes it."""
    user = users_in_slots(range(9, 10), 1)[0]
    client.top_up(user, 1_000)

    def die(*_: object) -> None:
        raise Crash

    mover = shards_from(settings)
    with monkeypatch.context() as patch:
        patch.setattr(resharding, "_finish_handover", die)
        with pytest.raises(Crash):
            move_slots(mover, [9], "s3")
    assert "slot_held_once" in {v.check for v in reconcile_database(database)}
    paying = ThreadPoolExecutor(max_workers=1).submit(client.pay, user, 100)
    time.sleep(0.5)
    assert not paying.done(), "the payment waits for the slot's hand-over"
    assert move_slots(mover, [9], "s3") == []
    assert paying.result(timeout=30).amount == 100
    assert client.balances(user) == {"EUR": 900}
    assert reconcile_database(database) == []
    mover.dispose()


def test_a_slot_nobody_holds_makes_its_writers_wait_then_abort(database):
    """The bound on the wait for a hand-over that never finishes: ABORTED
    SLOT_MOVING (a retry with the same idempotency key is safe)."""
    user = users_in_slots(range(11, 12), 1)[0]
    _, shard = database.route(user)
    with shard.session() as session, session.begin():
        session.execute(t.slot_ownership.delete().where(t.slot_ownership.c.slot == 11))
    began = time.monotonic()
    with pytest.raises(Aborted) as raised, UserUnitOfWork(database, user, patience_seconds=0.3):
        pass
    assert raised.value.reason == "SLOT_MOVING"
    assert time.monotonic() - began >= 0.3
    assert {v.check for v in reconcile_database(database)} == {"slot_held_once"}
