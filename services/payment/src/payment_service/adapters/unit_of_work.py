"""The payment service's unit of work: one database transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from payment_service.adapters.proto_codec import STREAM
from payment_service.adapters.repository import PaymentRepository


class PaymentUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.payments...; uow.commit()` (`service_layer.ports.UnitOfWork`)."""

    payments: PaymentRepository

    def __init__(self, database: Database, events_stream: str = STREAM) -> None:
        super().__init__(database)
        self.events_stream = events_stream

    def _start(self, session: Session) -> None:
        self.payments = PaymentRepository(session, self.events_stream)

    def commit(self) -> None:
        # The repository holds back writes nobody reads, to send them together.
        self.payments.flush()
        with self.payments.lock_waits():
            super().commit()
