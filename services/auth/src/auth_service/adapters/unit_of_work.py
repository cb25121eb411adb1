"""The SQLAlchemy unit of work: one transaction with the auth repositories attached."""

from __future__ import annotations

from sqlalchemy.orm import Session as DbSession
from switchyard_kit import Database, SqlAlchemyUnitOfWork

from auth_service.adapters.repository import (
    USERS_STREAM,
    SqlAlchemyAuditTrail,
    SqlAlchemyOutbox,
    SqlAlchemySessionRepository,
    SqlAlchemySigningKeyRepository,
    SqlAlchemyUserRepository,
)


class AuthUnitOfWork(SqlAlchemyUnitOfWork):
    """Example::

    with AuthUnitOfWork(database) as uow:
        user = uow.users.get_by_email("ann@example.com")
    """

    users: SqlAlchemyUserRepository
    sessions: SqlAlchemySessionRepository
    signing_keys: SqlAlchemySigningKeyRepository
    audit: SqlAlchemyAuditTrail
    outbox: SqlAlchemyOutbox

    def __init__(self, database: Database, users_stream: str = USERS_STREAM) -> None:
        super().__init__(database)
        self.users_stream = users_stream

    def _start(self, session: DbSession) -> None:
        self.users = SqlAlchemyUserRepository(session)
        self.sessions = SqlAlchemySessionRepository(session)
        self.signing_keys = SqlAlchemySigningKeyRepository(session)
        self.audit = SqlAlchemyAuditTrail(session)
        self.outbox = SqlAlchemyOutbox(session, self.users_stream)
