"""The units of work over the recommendation database (service_layer.ports.ModelUnitOfWork):
one transaction per event, and reads for scoring."""

from __future__ import annotations

from sqlalchemy.orm import Session
from switchyard_kit import SqlAlchemyUnitOfWork

from recommendation_service.adapters.repository import SqlModelRepository


class SqlModelUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.model...; uow.commit()` on the primary."""

    model: SqlModelRepository

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)


class SqlReadUnitOfWork(SqlAlchemyUnitOfWork):
    """Reads for scoring, on the replica when one is configured (never committed)."""

    model: SqlModelRepository

    def __enter__(self) -> SqlReadUnitOfWork:
        self.session = self.database.read_session()
        self._start(self.session)
        return self

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)
