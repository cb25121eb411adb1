"""The cleanup-expired job: ended sessions and old audit events go, the rest
stays, a second run finds nothing, and one run deletes at most its bound."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from auth_service.adapters import tables as t
from auth_service.adapters.retention import SqlRetentionStore
from auth_service.entrypoints.app import cleanup_expired_from, database_from
from auth_service.service_layer.retention import RetentionPolicy, cleanup_expired
from sqlalchemy import func, insert, select
from switchyard_kit.retention import RetentionBound

NOW = datetime.now(UTC)


def _days(days: float) -> datetime:
    return NOW + timedelta(days=days)


def _session(
    session, user: str, *, expires: float, revoked: float | None = None, tokens: int = 2
) -> str:
    session_id = str(uuid.uuid4())
    session.execute(
        insert(t.sessions).values(
            id=session_id,
            user_id=user,
            created_at=_days(-60),
            expires_at=_days(expires),
            revoked_at=None if revoked is None else _days(revoked),
        )
    )
    for _ in range(tokens):
        session.execute(
            insert(t.refresh_tokens).values(
                id=str(uuid.uuid4()),
                session_id=session_id,
                token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
                created_at=_days(-60),
                expires_at=_days(expires),
            )
        )
    return session_id


def _audit(session, *, age_days: float) -> None:
    session.execute(
        insert(t.audit_events).values(
            id=str(uuid.uuid4()),
            occurred_at=_days(-age_days),
            event_type="login_succeeded",
            details={},
        )
    )


def _user(session) -> str:
    user = str(uuid.uuid4())
    session.execute(
        insert(t.users).values(
            id=user,
            email=f"{user}@example.com",
            password_hash="x",
            created_at=_days(-60),
            updated_at=_days(-60),
        )
    )
    return user


def _ids(database, table) -> set[str]:
    with database.session() as session:
        return set(session.execute(select(table.c.id)).scalars())


def test_ended_sessions_and_old_audit_events_go_the_rest_stays(database_url, make_settings):
    settings = make_settings(database_url)
    database = database_from(settings)
    with database.session() as session, session.begin():
        user = _user(session)
        expired_long_ago = _session(session, user, expires=-40)
        revoked_long_ago = _session(session, user, expires=+20, revoked=-40)
        expired_lately = _session(session, user, expires=-10)
        revoked_lately = _session(session, user, expires=+20, revoked=-2)
        active = _session(session, user, expires=+20)
        _audit(session, age_days=400)
        _audit(session, age_days=100)
    first = cleanup_expired_from(database, settings)
    assert first == {"sessions": 2, "audit_events": 1}
    assert _ids(database, t.sessions) == {expired_lately, revoked_lately, active}
    with database.session() as session:
        owners = set(session.execute(select(t.refresh_tokens.c.session_id)).scalars())
        ages = session.execute(select(t.audit_events.c.occurred_at)).scalars().all()
    # The refresh tokens of a deleted session went with it.
    assert owners == {expired_lately, revoked_lately, active}
    assert expired_long_ago not in owners
    assert revoked_long_ago not in owners
    assert [age > _days(-101) for age in ages] == [True]
    # Idempotent: nothing is left to delete.
    assert cleanup_expired_from(database, settings) == {"sessions": 0, "audit_events": 0}
    database.dispose()


def test_one_run_deletes_at_most_its_bound(database_url, make_settings):
    database = database_from(make_settings(database_url))
    with database.session() as session, session.begin():
        user = _user(session)
        for _ in range(12):
            _session(session, user, expires=-40, tokens=1)
        for _ in range(7):
            _audit(session, age_days=400)
    store = SqlRetentionStore(database, RetentionBound(batch_size=2, max_rows=5))
    policy = RetentionPolicy(ended_session_days=30, audit_event_days=365)
    assert cleanup_expired(store, policy) == {"sessions": 5, "audit_events": 5}
    assert cleanup_expired(store, policy) == {"sessions": 5, "audit_events": 2}
    assert cleanup_expired(store, policy) == {"sessions": 2, "audit_events": 0}
    assert cleanup_expired(store, policy) == {"sessions": 0, "audit_events": 0}
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(t.refresh_tokens)).scalar() == 0
    database.dispose()


def test_the_command_uses_the_retention_settings(database_url, make_settings):
    database = database_from(make_settings(database_url))
    with database.session() as session, session.begin():
        user = _user(session)
        _session(session, user, expires=-3)
        _audit(session, age_days=3)
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": database_url,
        "AUTH_ENDED_SESSION_RETENTION_DAYS": "2",
        "AUTH_AUDIT_EVENT_RETENTION_DAYS": "2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "auth_service", "cleanup-expired"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "deleted 1 ended session(s), 1 audit event(s)" in result.stdout
    database.dispose()
