"""The unit of work over the recommendation database: one transaction per event."""

from __future__ import annotations

from sqlalchemy.orm import Session
from switchyard_kit import SqlAlchemyUnitOfWork

from recommendation_service.adapters.repository import SqlModelRepository


class ModelUnitOfWork(SqlAlchemyUnitOfWork):
    """`with uow: uow.model...; uow.commit()` on the primary."""

    model: SqlModelRepository

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)


class ReadUnitOfWork(SqlAlchemyUnitOfWork):
    """Reads for scoring, on the replica when one is configured (never committed)."""

    model: SqlModelRepository

    def __enter__(self) -> ReadUnitOfWork:
        self.session = self.database.read_session()
        self._start(self.session)
        return self

    def _start(self, session: Session) -> None:
        self.model = SqlModelRepository(session)
