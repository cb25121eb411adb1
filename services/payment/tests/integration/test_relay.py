"""The outbox relay against real Redis, through a real outage, and the
broker-less path to an EventSinkService."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import redis
from payment_service.adapters import tables as t
from payment_service.entrypoints.app import payment_relay
from sqlalchemy import func, select
from switchyard.events.v1 import events_pb2, events_pb2_grpc
from switchyard.payment.v1 import events_pb2 as payment_events
from switchyard_dev.ports import free_port
from switchyard_kit.events import (
    EventSinkServicer,
    GrpcSinkPublisher,
    OutboxRelay,
    RedisStreamPublisher,
    stream_name,
    unpack_payload,
)

pytestmark = [pytest.mark.redis, pytest.mark.backends("sqlite", "postgres", "pgbouncer")]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to Redis; `stop()` cuts every connection and
    stops listening (Redis "goes down"), `start()` brings it back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone does not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    url = redis.connection.parse_url(redis_url)
    tcp = TcpProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    tcp.start()
    yield tcp
    tcp.stop()


def _delivered(redis_url: str, users: set[str]) -> list[tuple[str, str, str]]:
    """(key, event type, subject id) of our users' entries, in stream order."""
    client = redis.Redis.from_url(redis_url)
    entries = client.xrange(stream_name("payments"))
    client.close()
    seen = []
    for _entry_id, fields in entries:
        if fields[b"key"].decode() not in users:
            continue
        event = events_pb2.Event.FromString(fields[b"event"])
        seen.append((event.key, event.type, event.id))
    return seen


def _outbox(database) -> list[tuple[str, str, str, object]]:
    with database.session() as session:
        rows = session.execute(
            select(
                t.outbox.c.key, t.outbox.c.type, t.outbox.c.event_id, t.outbox.c.sent_at
            ).order_by(t.outbox.c.id)
        ).all()
    return [tuple(row) for row in rows]


def _drain(relay: OutboxRelay) -> None:
    while relay.relay_once():
        pass


def test_relay_delivers_everything_once_in_order_across_a_redis_outage(
    client, database, redis_url, proxy
):
    users = [str(uuid.uuid4()) for _ in range(3)]
    for user in users:
        client.top_up(user, 10_000)
    publisher = RedisStreamPublisher(f"redis://127.0.0.1:{proxy.port}/15", timeout_seconds=1)
    relay = payment_relay(database, publisher, batch_size=4, poll_interval_seconds=0.01)
    assert relay.relay_once() == 3

    proxy.stop()  # Redis is gone
    for n in range(6):
        for user in users:
            client.pay(user, 100 + n, items=[(f"sku-{n}", 1, 100 + n)])
    for _ in range(3):
        relay.step()
    assert relay.failures == 3
    assert sum(1 for row in _outbox(database) if row[3] is None) == 18

    # The relay process restarts while Redis is still down; nothing is lost.
    relay = payment_relay(database, publisher, batch_size=4, poll_interval_seconds=0.01)
    relay.step()
    assert relay.failures == 1
    proxy.start()  # Redis is back
    payment = client.pay(users[0], 1)
    client.refund(users[0], payment.id)
    while relay.step() == 0:
        pass
    _drain(relay)
    assert relay.failures == 0

    outbox = _outbox(database)
    assert all(row[3] is not None for row in outbox)
    delivered = _delivered(redis_url, set(users))
    assert sorted(e[2] for e in delivered) == sorted(row[2] for row in outbox), "exactly once"
    for user in users:  # per-key order is the commit order
        assert [e[2] for e in delivered if e[0] == user] == [
            row[2] for row in outbox if row[0] == user
        ]
    with database.session() as session:
        succeeded = session.execute(
            select(func.count()).select_from(t.payments).where(t.payments.c.status != "failed")
        ).scalar_one()
        payment_events_count = session.execute(
            select(func.count())
            .select_from(t.outbox)
            .where(t.outbox.c.type == "switchyard.payment.v1.PaymentSucceeded")
        ).scalar_one()
    assert payment_events_count == succeeded == 19
    publisher.close()


def test_payment_events_carry_what_consumers_need(client, database, redis_url):
    user = str(uuid.uuid4())
    client.top_up(user, 5_000)
    payment = client.pay(user, 3_000, items=[("book", 2, 1_000), ("pen", 1, 1_000)])
    client.refund(user, payment.id, 1_000)
    relay = payment_relay(database, RedisStreamPublisher(redis_url))
    _drain(relay)
    stream = redis.Redis.from_url(redis_url)
    events = [
        events_pb2.Event.FromString(fields[b"event"])
        for _id, fields in stream.xrange(stream_name("payments"))
        if fields[b"key"] == user.encode()
    ]
    stream.close()
    assert [e.type.rsplit(".", 1)[1] for e in events] == [
        "WalletToppedUp",
        "PaymentSucceeded",
        "PaymentRefunded",
    ]
    succeeded = unpack_payload(events[1], payment_events.PaymentSucceeded)
    assert succeeded is not None
    assert (succeeded.user_id, succeeded.payment_id, succeeded.amount) == (user, payment.id, 3_000)
    assert [(i.sku, i.quantity, i.unit_amount) for i in succeeded.items] == [
        ("book", 2, 1_000),
        ("pen", 1, 1_000),
    ]
    refunded = unpack_payload(events[2], payment_events.PaymentRefunded)
    assert refunded is not None
    assert (refunded.amount, refunded.refunded_amount, refunded.fully_refunded) == (
        1_000,
        1_000,
        False,
    )
    assert len({e.id for e in events}) == 3


@pytest.mark.backends("postgres", "pgbouncer")
def test_two_relays_never_publish_out_of_order(client, database, redis_url, backend):
    users = [str(uuid.uuid4()) for _ in range(4)]
    for user in users:
        client.top_up(user, 100_000)
        for n in range(15):
            client.pay(user, 10 + n)
    relays = [
        payment_relay(database, RedisStreamPublisher(redis_url), batch_size=5) for _ in range(2)
    ]
    with futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(_drain, relays))
    _drain(relays[0])
    outbox = _outbox(database)
    delivered = _delivered(redis_url, set(users))
    assert len(delivered) == len(outbox) == 64
    for user in users:
        assert [e[2] for e in delivered if e[0] == user] == [
            row[2] for row in outbox if row[0] == user
        ]


def test_embedded_path_delivers_to_an_event_sink(client, database):
    received = []
    # gRPC retries an IDEMPOTENT call 3 times: fail all of them once.
    failures = {"left": 3}

    def handle(event):
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("consumer hiccup")
        received.append(event.id)

    server = grpc.server(futures.ThreadPoolExecutor(2))
    events_pb2_grpc.add_EventSinkServiceServicer_to_server(
        EventSinkServicer(handle, max_deliveries=10), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        user = str(uuid.uuid4())
        client.top_up(user, 1_000)
        client.pay(user, 10)
        relay = payment_relay(
            database, GrpcSinkPublisher([f"127.0.0.1:{port}"]), poll_interval_seconds=0.01
        )
        relay.step()  # the consumer failed: the relay retries later
        assert relay.failures == 1
        assert received == []
        _drain(relay)
        assert received == [row[2] for row in _outbox(database)]
    finally:
        server.stop(0)


def test_without_a_publisher_rows_stay_unsent(client, database, caplog):
    user = str(uuid.uuid4())
    client.top_up(user, 1_000)
    relay = payment_relay(database, None)
    assert relay.relay_once() == 0
    assert relay.relay_once() == 0
    assert all(row[3] is None for row in _outbox(database))
    assert sum("no event publisher" in r.getMessage() for r in caplog.records) == 1
