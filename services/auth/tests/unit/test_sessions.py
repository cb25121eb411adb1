"""Refresh rotation, reuse detection, logout, sessions and password change, with fakes."""

from __future__ import annotations

import jwt
import pytest
from auth_service.domain.errors import (
    InvalidRefreshToken,
    RefreshTokenReused,
    SessionNotFound,
    WrongPassword,
)
from auth_service.service_layer.handlers import (
    Caller,
    ChangePassword,
    ClientInfo,
    Login,
    Refresh,
    SignUp,
)
from switchyard_kit import InvalidArgument

from .test_handlers import verify

PASSWORD = "a long passphrase"


@pytest.fixture
def account(auth):
    return auth.sign_up(SignUp("ann@example.com", PASSWORD, client=ClientInfo("10.0.0.1", "ua-1")))


def caller_of(auth, tokens) -> Caller:
    return Caller(user_id=tokens.user_id, session_id=verify(auth, tokens.access_token)["sid"])


def test_refresh_rotates_and_spends_the_old_token(auth, account, database, clock) -> None:
    sid = verify(auth, account.access_token)["sid"]
    clock.advance(1)
    pair = auth.refresh(Refresh(account.refresh_token))
    assert pair.refresh_token != account.refresh_token
    assert jwt.decode(pair.access_token, options={"verify_signature": False})["sid"] == sid
    spent = [t for t in database.refresh_tokens.values() if t.spent_at is not None]
    assert len(spent) == 1
    assert spent[0].replaced_by_id is not None
    session = database.sessions[sid]
    assert session.last_used_at == clock()
    assert "token_refreshed" in database.audit_types()


def test_reuse_after_the_overlap_revokes_the_whole_family(
    auth, account, database, clock, revocation_publisher
) -> None:
    pair = auth.refresh(Refresh(account.refresh_token))
    clock.advance(6)  # past the 5 s overlap
    with pytest.raises(RefreshTokenReused):
        auth.refresh(Refresh(account.refresh_token))
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(pair.refresh_token))  # the legitimate copy is dead too
    sid = verify(auth, account.access_token)["sid"]
    assert database.sessions[sid].revoke_reason == "refresh_token_reuse"
    assert revocation_publisher.published == [sid]
    assert "refresh_token_reuse_detected" in database.audit_types()


def test_concurrent_refresh_within_the_overlap_gets_its_own_pair(auth, account, clock) -> None:
    first = auth.refresh(Refresh(account.refresh_token))
    clock.advance(2)
    second = auth.refresh(Refresh(account.refresh_token))
    assert second.refresh_token != first.refresh_token
    # Both new tokens work: no reuse was detected.
    auth.refresh(Refresh(first.refresh_token))
    auth.refresh(Refresh(second.refresh_token))


def test_idle_timeout(auth, account, clock) -> None:
    clock.advance(7 * 86_400 + 1)
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(account.refresh_token))


def test_absolute_lifetime_is_not_extended_by_refreshing(auth, account, clock) -> None:
    token = account.refresh_token
    for _ in range(4):  # refresh every 6 days: never idle, but 30 days pass
        clock.advance(6 * 86_400)
        token = auth.refresh(Refresh(token)).refresh_token
    clock.advance(6 * 86_400)
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(token))


@pytest.mark.parametrize("value", ["", "x" * 300, "unknown-token"])
def test_unknown_or_malformed_refresh_tokens(auth, value) -> None:
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(value))


def test_logout_by_refresh_token_or_by_access_token(auth, account, revocation_publisher) -> None:
    caller = caller_of(auth, account)
    auth.logout(caller, account.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(account.refresh_token))
    assert revocation_publisher.published == [caller.session_id]
    second = auth.login(Login("ann@example.com", PASSWORD))
    auth.logout(caller_of(auth, second))
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(second.refresh_token))


def test_logout_cannot_end_someone_elses_session(auth, account) -> None:
    other = auth.sign_up(SignUp("bob@example.com", PASSWORD))
    auth.logout(caller_of(auth, other), account.refresh_token)
    auth.refresh(Refresh(account.refresh_token))  # still works


def test_sessions_list_revoke_one_and_revoke_others(auth, account, database) -> None:
    second = auth.login(Login("ann@example.com", PASSWORD, ClientInfo("10.0.0.2", "ua-2")))
    third = auth.login(Login("ann@example.com", PASSWORD, ClientInfo("10.0.0.3", "ua-3")))
    caller = caller_of(auth, third)
    sessions = auth.list_sessions(caller)
    assert {s.user_agent for s in sessions} == {"ua-1", "ua-2", "ua-3"}
    auth.revoke_session(caller, caller_of(auth, second).session_id)
    assert len(auth.list_sessions(caller)) == 2
    assert auth.revoke_other_sessions(caller) == 1
    assert [s.id for s in auth.list_sessions(caller)] == [caller.session_id]
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(account.refresh_token))
    auth.refresh(Refresh(third.refresh_token))


def test_revoking_another_users_session_is_not_found(auth, account) -> None:
    other = auth.sign_up(SignUp("bob@example.com", PASSWORD))
    with pytest.raises(SessionNotFound):
        auth.revoke_session(caller_of(auth, other), caller_of(auth, account).session_id)
    with pytest.raises(SessionNotFound):
        auth.revoke_session(caller_of(auth, other), "not-a-uuid")


def test_password_change_revokes_the_other_sessions(auth, account, database) -> None:
    current = auth.login(Login("ann@example.com", PASSWORD))
    caller = caller_of(auth, current)
    auth.change_password(caller, ChangePassword(PASSWORD, "another long passphrase"))
    with pytest.raises(InvalidRefreshToken):
        auth.refresh(Refresh(account.refresh_token))
    auth.refresh(Refresh(current.refresh_token))
    auth.login(Login("ann@example.com", "another long passphrase"))
    assert "password_changed" in database.audit_types()
    assert all("passphrase" not in repr(event) for event in database.audit)


def test_password_change_needs_the_current_password_and_a_good_new_one(auth, account) -> None:
    caller = caller_of(auth, account)
    with pytest.raises(WrongPassword):
        auth.change_password(caller, ChangePassword("wrong password", "another long passphrase"))
    with pytest.raises(InvalidArgument) as caught:
        auth.change_password(caller, ChangePassword(PASSWORD, "password"))
    assert [v.field for v in caught.value.violations] == ["new_password"]


def test_revocations_not_published_are_republished(
    auth, account, revocation_publisher, clock
) -> None:
    revocation_publisher.failing = True
    caller = caller_of(auth, account)
    auth.logout(caller)  # succeeds although Redis is down
    assert auth.revocations.pending_since is not None
    assert auth.revocations.resync() is False
    revocation_publisher.failing = False
    assert auth.revocations.resync() is True
    assert revocation_publisher.published == [caller.session_id]
    assert auth.revocations.pending_since is None


def test_revoked_sessions_list_covers_the_access_token_lifetime(auth, account, clock) -> None:
    caller = caller_of(auth, account)
    auth.logout(caller)
    sessions, _as_of = auth.revoked_sessions(None)
    assert [s.id for s in sessions] == [caller.session_id]
    clock.advance(1000)  # beyond the lookback: its tokens have expired
    assert auth.revoked_sessions(None)[0] == []
