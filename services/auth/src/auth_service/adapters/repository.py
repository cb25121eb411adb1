"""The one place auth reads and writes its tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession
from switchyard.auth.v1 import events_pb2 as auth_events
from switchyard_kit.events import new_event

from auth_service.adapters.tables import (
    audit_events,
    outbox,
    refresh_tokens,
    sessions,
    signing_keys,
    users,
)
from auth_service.domain.errors import EmailTaken
from auth_service.domain.events import UserRegistered
from auth_service.domain.model import AuditEvent, RefreshToken, Session, SigningKey, User

# The logical stream of account events (Redis stream "events.users").
USERS_STREAM = "users"


def _fields(row: RowMapping) -> dict[str, Any]:
    return dict(row)


class SqlAlchemyUserRepository:
    def __init__(self, session: DbSession) -> None:
        self._session = session

    def add(self, user: User) -> None:
        # The id is a fresh UUID, so the only constraint a new row can break is
        # the unique email: a concurrent signup with the same address won.
        # (No savepoint: the unit of work is abandoned anyway, and pysqlite's
        # savepoints would commit the outer transaction on release.)
        try:
            self._session.execute(
                insert(users).values(
                    id=user.id,
                    email=user.email,
                    password_hash=user.password_hash,
                    created_at=user.created_at,
                    updated_at=user.updated_at,
                )
            )
        except IntegrityError:
            raise EmailTaken from None

    def get(self, user_id: str) -> User | None:
        row = self._session.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return User(**_fields(row)) if row is not None else None

    def get_by_email(self, email: str) -> User | None:
        row = self._session.execute(select(users).where(users.c.email == email)).mappings().first()
        return User(**_fields(row)) if row is not None else None

    def exists_with_email(self, email: str) -> bool:
        return bool(self._session.scalar(select(exists().where(users.c.email == email))))

    def update_password_hash(self, user_id: str, password_hash: str, now: datetime) -> None:
        self._session.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, updated_at=now)
        )


class SqlAlchemySessionRepository:
    def __init__(self, session: DbSession) -> None:
        self._session = session

    def add(self, session: Session) -> None:
        self._session.execute(
            insert(sessions).values(
                id=session.id,
                user_id=session.user_id,
                created_at=session.created_at,
                expires_at=session.expires_at,
                revoked_at=session.revoked_at,
                revoke_reason=session.revoke_reason,
                client_address=session.client_address,
                user_agent=session.user_agent,
                last_used_at=session.last_used_at,
            )
        )

    def get(self, session_id: str) -> Session | None:
        row = (
            self._session.execute(select(sessions).where(sessions.c.id == session_id))
            .mappings()
            .first()
        )
        return Session(**_fields(row)) if row is not None else None

    def add_refresh_token(self, token: RefreshToken) -> None:
        self._session.execute(
            insert(refresh_tokens).values(
                id=token.id,
                session_id=token.session_id,
                token_hash=token.token_hash,
                created_at=token.created_at,
                expires_at=token.expires_at,
                spent_at=token.spent_at,
                revoked_at=token.revoked_at,
                replaced_by_id=token.replaced_by_id,
            )
        )

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = (
            self._session.execute(
                select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
            .mappings()
            .first()
        )
        return RefreshToken(**_fields(row)) if row is not None else None

    def spend_refresh_token(self, token_id: str, now: datetime, replaced_by_id: str) -> bool:
        # Compare-and-set: of two concurrent refreshes only one sees rowcount 1,
        # on PostgreSQL (row lock) and SQLite (one writer) alike.
        result = self._session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.id == token_id, refresh_tokens.c.spent_at.is_(None))
            .values(spent_at=now, replaced_by_id=replaced_by_id)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def touch(self, session_id: str, now: datetime) -> None:
        self._session.execute(
            update(sessions).where(sessions.c.id == session_id).values(last_used_at=now)
        )

    def revoke(self, session_id: str, now: datetime, reason: str) -> bool:
        result = self._session.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )
        self._session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.session_id == session_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def active_for_user(self, user_id: str, now: datetime) -> list[Session]:
        query = (
            select(sessions)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
            .order_by(func.coalesce(sessions.c.last_used_at, sessions.c.created_at).desc())
        )
        return [Session(**_fields(row)) for row in self._session.execute(query).mappings()]

    def revoked_since(self, since: datetime) -> list[Session]:
        query = (
            select(sessions).where(sessions.c.revoked_at >= since).order_by(sessions.c.revoked_at)
        )
        return [Session(**_fields(row)) for row in self._session.execute(query).mappings()]


class SqlAlchemyAuditTrail:
    def __init__(self, session: DbSession) -> None:
        self._session = session

    def add(self, event: AuditEvent) -> None:
        self._session.execute(
            insert(audit_events).values(
                id=event.id,
                occurred_at=event.occurred_at,
                event_type=event.event_type,
                user_id=event.user_id,
                session_id=event.session_id,
                client_address=event.client_address,
                user_agent=event.user_agent,
                details=dict(event.details),
            )
        )


class SqlAlchemyOutbox:
    """Writes events as serialized switchyard.events.v1.Event envelopes."""

    def __init__(self, session: DbSession, stream: str = USERS_STREAM) -> None:
        self._session = session
        self._stream = stream

    def add(self, event: UserRegistered) -> None:
        payload = auth_events.UserRegistered(user_id=event.user_id, display_name=event.display_name)
        payload.create_time.FromDatetime(event.occurred_at)
        envelope = new_event(
            payload,
            stream=self._stream,
            key=event.user_id,
            occurred_at=event.occurred_at,
            event_id=event.event_id,
        )
        self._session.execute(
            insert(outbox).values(
                event_id=envelope.id,
                stream=envelope.stream,
                key=envelope.key,
                type=envelope.type,
                payload=envelope.SerializeToString(),
                created_at=event.occurred_at,
            )
        )


class SqlAlchemySigningKeyRepository:
    def __init__(self, session: DbSession) -> None:
        self._session = session

    def add(self, key: SigningKey) -> None:
        self._session.execute(
            insert(signing_keys).values(
                kid=key.kid,
                algorithm=key.algorithm,
                public_key=key.public_key,
                private_key=key.private_key,
                key_encryption=key.key_encryption,
                created_at=key.created_at,
                signing_until=key.signing_until,
                retired_at=key.retired_at,
            )
        )

    def signing(self, now: datetime) -> list[SigningKey]:
        query = (
            select(signing_keys)
            .where(or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > now))
            .where(or_(signing_keys.c.signing_until.is_(None), signing_keys.c.signing_until > now))
            .order_by(signing_keys.c.created_at, signing_keys.c.kid)
        )
        return [SigningKey(**_fields(row)) for row in self._session.execute(query).mappings()]

    def published(self, now: datetime) -> list[SigningKey]:
        query = (
            select(signing_keys)
            .where(or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > now))
            .order_by(signing_keys.c.created_at, signing_keys.c.kid)
        )
        return [SigningKey(**_fields(row)) for row in self._session.execute(query).mappings()]

    def retire(self, kid: str, signing_until: datetime, retired_at: datetime) -> None:
        self._session.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == kid)
            .values(signing_until=signing_until, retired_at=retired_at)
        )
