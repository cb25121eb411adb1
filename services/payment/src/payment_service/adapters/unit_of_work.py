"""The payment service's unit of work: one database transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from payment_service.adapters.proto_codec import STREAM
from payment_service.adapters.repository import PaymentRepository


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
