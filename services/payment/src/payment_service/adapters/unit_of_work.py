"""The payment service's unit of work: one database transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session
from switchyard_kit import SqlAlchemyUnitOfWork

from payment_service.adapters.repository import PaymentRepository


class PaymentUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.payments...; uow.commit()` (`service_layer.ports.UnitOfWork`)."""

    payments: PaymentRepository

    def _start(self, session: Session) -> None:
        self.payments = PaymentRepository(session)

    def commit(self) -> None:
        # The repository holds back writes nobody reads, to send them together.
        self.payments.flush()
        with self.payments.lock_waits():
            super().commit()
