"""The unit of work over the recommendation database (service_layer.ports.ModelUnitOfWork):
one transaction per event, and reads for scoring."""

from __future__ import annotations

from sqlalchemy.orm import Session
from switchyard_kit import SqlAlchemyUnitOfWork

from recommendation_service.adapters.repository import SqlModelRepository


class SqlModelUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.model...; uow.commit()` on the primary; with `read_only=True`
    the reads for scoring, on the replica when one is configured and may serve
    them (never committed). `for_user`: see switchyard_kit.SqlAlchemyUnitOfWork."""

    model: SqlModelRepository

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)
