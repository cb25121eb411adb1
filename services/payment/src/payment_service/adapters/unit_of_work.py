"""The payment service's unit of work: one database transaction, on the shard
of the user it is for."""

from __future__ import annotations

import time
from typing import Self

from sqlalchemy.orm import Session
from switchyard_kit import Aborted, Database, SqlAlchemyUnitOfWork

from payment_service.adapters.proto_codec import STREAM
from payment_service.adapters.repository import PaymentRepository
from payment_service.adapters.shards import ShardSet, holds_slot
from payment_service.domain import errors

# How long a transaction looks for the shard of a slot being handed over. The
# hand-over takes milliseconds; this covers a `reshard` that crashed in it,
# until it is resumed. Then ABORTED: retry (with the same idempotency key).
ROUTE_PATIENCE_SECONDS = 30.0


class PaymentUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.payments...; uow.commit()` (`service_layer.ports.UnitOfWork`).

    `for_user` / `read_only`: see switchyard_kit.SqlAlchemyUnitOfWork (a
    writing unit records the user's write on commit; a read-only one may read
    the replica once it has replayed that user's last write).
    """

    payments: PaymentRepository

    def __init__(
        self,
        database: Database,
        events_stream: str = STREAM,
        *,
        read_only: bool = False,
        for_user: str | None = None,
    ) -> None:
        super().__init__(database, read_only=read_only, for_user=for_user)
        self.events_stream = events_stream

    def _start(self, session: Session) -> None:
        self.payments = PaymentRepository(session, self.events_stream)

    def commit(self) -> None:
        # The repository holds back writes nobody reads, to send them together.
        self.payments.flush()
        with self.payments.lock_waits():
            super().commit()


class UserUnitOfWork(PaymentUnitOfWork):
    """A transaction for one user, on the shard holding the user's slot.

    With several shards it first holds the slot (FOR KEY SHARE, see
    `adapters.shards.holds_slot`): while `reshard` moves the slot the
    transaction waits; once the slot has moved, the shard no longer holds it
    and the transaction starts again on the shard that does. Nothing has been
    read or written before that check, so starting again is always safe.

    Every unit records its writes for `user_id` (read-your-writes); a
    `read_only` one may read a replica, but only with one shard: the slot
    check takes a row lock, which a standby refuses, so with several shards
    every unit runs on the shard's primary (per-shard replicas are not wired).
    """

    def __init__(
        self,
        shards: ShardSet,
        user_id: str,
        events_stream: str = STREAM,
        patience_seconds: float = ROUTE_PATIENCE_SECONDS,
        *,
        read_only: bool = False,
    ) -> None:
        self.shard, database = shards.route(user_id)
        super().__init__(
            database,
            events_stream,
            read_only=read_only and not shards.sharded,
            for_user=user_id,
        )
        self.shards = shards
        self.user_id = user_id
        self.patience_seconds = patience_seconds

    def __enter__(self) -> Self:
        if not self.shards.sharded:
            return super().__enter__()
        slot = self.shards.slot_of(self.user_id)
        deadline = time.monotonic() + self.patience_seconds
        pause = 0.005
        while True:
            super().__enter__()
            try:
                if holds_slot(self.session, slot):
                    return self
            except BaseException:
                self.__exit__(None, None, None)
                raise
            self.__exit__(None, None, None)
            if time.monotonic() > deadline:
                raise Aborted(
                    "this user's payment data is being moved between shards: retry",
                    reason=errors.SLOT_MOVING,
                )
            before = self.shard
            self.shards.refresh()
            self.shard, self.database = self.shards.route(self.user_id)
            if self.shard == before:
                # No shard holds it yet (a hand-over in flight): wait a little.
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
