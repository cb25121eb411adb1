"""The auth use cases: sign up, log in, refresh, log out, sessions, password
change, the JWKS and the revocation list."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from switchyard_kit import FieldViolation, InvalidArgument, utc_now

from auth_service.domain.display_names import InvalidDisplayName, normalize_display_name
from auth_service.domain.emails import InvalidEmail, normalize_email
from auth_service.domain.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    LoginThrottled,
    PasswordHashingBusy,
    RefreshTokenReused,
    SessionNotFound,
    WrongPassword,
)
from auth_service.domain.events import UserRegistered
from auth_service.domain.model import AuditEvent, RefreshToken, Session, User
from auth_service.domain.passwords import PasswordPolicy
from auth_service.domain.tokens import (
    ACCESS_TOKEN_JWT_TYPE,
    AccessTokenClaims,
    IssuedTokens,
    JsonWebKey,
    TokenPolicy,
    hash_refresh_token,
    new_refresh_token,
)
from auth_service.service_layer import audit
from auth_service.service_layer.keys import ActiveKey, KeyRing
from auth_service.service_layer.ports import (
    PasswordHasher,
    ProfileDirectory,
    TokenSigner,
    UnitOfWork,
)
from auth_service.service_layer.revocations import Revocations
from auth_service.service_layer.throttle import LoginThrottle

logger = logging.getLogger(__name__)

# Longest client details kept with a session (they come from HTTP headers).
MAX_USER_AGENT_LENGTH = 512
MAX_CLIENT_ADDRESS_LENGTH = 64


@dataclass(frozen=True)
class ClientInfo:
    """Who is signing in, as the gateway saw it (for the session record)."""

    address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SignUp:
    email: str
    password: str
    display_name: str = ""
    client: ClientInfo = ClientInfo()


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    client: ClientInfo = ClientInfo()


@dataclass(frozen=True)
class Refresh:
    refresh_token: str
    client: ClientInfo = ClientInfo()


@dataclass(frozen=True)
class Caller:
    """The verified caller of a protected RPC: the access token's `sub` and `sid`."""

    user_id: str
    session_id: str | None = None
    client: ClientInfo = ClientInfo()


@dataclass(frozen=True)
class ChangePassword:
    current_password: str
    new_password: str


# Longest refresh token looked up (ours are 43 characters).
MAX_REFRESH_TOKEN_LENGTH = 256

# Why a session ended (sessions.revoke_reason).
REASON_LOGOUT = "logout"
REASON_REVOKED = "revoked_by_user"
REASON_OTHERS = "revoked_other_sessions"
REASON_PASSWORD = "password_changed"  # noqa: S105 - a reason, not a secret
REASON_REUSE = "refresh_token_reuse"


@dataclass(frozen=True)
class _ValidSignUp:
    email: str
    display_name: str


def _validate_sign_up(command: SignUp, policy: PasswordPolicy) -> _ValidSignUp:
    """The normalised signup fields, or InvalidArgument naming every bad field."""
    violations: list[FieldViolation] = []
    email = ""
    try:
        email = normalize_email(command.email)
    except InvalidEmail as exc:
        violations.append(FieldViolation("email", str(exc)))
    personal = (email, email.partition("@")[0]) if email else ()
    violations += policy.violations(command.password, field="password", personal=personal)
    display_name = ""
    try:
        display_name = normalize_display_name(command.display_name)
    except InvalidDisplayName as exc:
        violations.append(FieldViolation("display_name", str(exc)))
    if violations:
        raise InvalidArgument("the signup request has invalid fields", violations)
    return _ValidSignUp(email=email, display_name=display_name)


class AuthService:
    """The use cases, with what they depend on injected (fakes in unit tests).

    Example::

        auth = AuthService(uow_factory, hasher=hasher, signer=signer, keys=keys,
                           token_policy=token_policy, throttle=throttle,
                           revocations=revocations, profiles=profiles)
        tokens = auth.sign_up(SignUp("ann@example.com", "a long passphrase"))
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        *,
        hasher: PasswordHasher,
        signer: TokenSigner,
        keys: KeyRing,
        token_policy: TokenPolicy,
        throttle: LoginThrottle,
        revocations: Revocations,
        profiles: ProfileDirectory,
        password_policy: PasswordPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow_factory = uow_factory
        self._hasher = hasher
        self._signer = signer
        self._keys = keys
        self._token_policy = token_policy
        self._throttle = throttle
        self.revocations = revocations
        self._profiles = profiles
        self._password_policy = password_policy or PasswordPolicy()
        self._clock = clock

    def sign_up(self, command: SignUp) -> IssuedTokens:
        """Create the account and its first session.

        The profile is created before this returns, through the profile
        service's CreateProfile, so anyone can read it as soon as signup has
        answered. The UserRegistered event, written to the outbox in the same
        transaction as the account (so it exists if and only if the account
        does), is the at-least-once backup when that call fails.
        """
        valid = _validate_sign_up(command, self._password_policy)
        with self._uow_factory() as uow:
            if uow.users.exists_with_email(valid.email):
                raise EmailTaken
        # The slow hash and the key lookup run outside any transaction, so no
        # connection (nor SQLite's write lock) is held while they work.
        password_hash = self._hasher.hash(command.password)
        key = self._keys.active()
        now = self._clock()
        user = User(
            id=str(uuid.uuid4()),
            email=valid.email,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        with self._uow_factory() as uow:
            uow.users.add(user)
            session, refresh_token = self._open_session(uow, user.id, command.client, now)
            uow.outbox.add(
                UserRegistered(
                    event_id=str(uuid.uuid4()),
                    user_id=user.id,
                    display_name=valid.display_name,
                    occurred_at=now,
                )
            )
            event = audit.record(
                uow, audit.SIGNUP, now, **_who(user.id, session.id, command.client)
            )
            uow.commit()
        audit.emit(event)
        self._throttle.succeeded(valid.email, command.client.address)
        self._profiles.create_profile(user.id, valid.display_name)
        return self._issue(user.id, session.id, refresh_token, key, now)

    def login(self, command: Login) -> IssuedTokens:
        """Tokens for a matching email and password; InvalidCredentials otherwise.

        Unknown email and wrong password fail alike and take alike: for an
        unknown email a dummy hash is verified, so the slow hash runs either
        way. Failures are counted per (account, address), per address and per
        account (service_layer.throttle); past the free ones the caller must
        wait (LoginThrottled, RESOURCE_EXHAUSTED).
        """
        self._check_login_fields(command)
        try:
            email: str | None = normalize_email(command.email)
        except InvalidEmail:
            email = None
        account = email or command.email
        address = command.client.address
        try:
            self._throttle.check(account, address)
        except LoginThrottled as exc:
            self._audit_alone(
                audit.LOGIN_THROTTLED,
                client=command.client,
                details={"retry_after_seconds": int(exc.retry_after_seconds)},
            )
            raise
        user: User | None = None
        if email is not None:
            with self._uow_factory() as uow:
                user = uow.users.get_by_email(email)
        stored_hash = user.password_hash if user is not None else self._hasher.dummy_hash
        matches = self._hasher.verify(stored_hash, command.password)
        if user is None or not matches:
            self._throttle.failed(account, address)
            self._audit_alone(
                audit.LOGIN_FAILED,
                user_id=user.id if user is not None else None,
                client=command.client,
                details={"reason": "wrong_password" if user is not None else "unknown_email"},
            )
            raise InvalidCredentials
        self._throttle.succeeded(account, address)
        new_hash = self._rehash(stored_hash, command.password)
        key = self._keys.active()
        now = self._clock()
        events: list[AuditEvent] = []
        with self._uow_factory() as uow:
            if new_hash is not None:
                uow.users.update_password_hash(user.id, new_hash, now)
                events.append(audit.record(uow, audit.PASSWORD_REHASHED, now, user_id=user.id))
            session, refresh_token = self._open_session(uow, user.id, command.client, now)
            events.append(
                audit.record(
                    uow, audit.LOGIN_SUCCEEDED, now, **_who(user.id, session.id, command.client)
                )
            )
            uow.commit()
        audit.emit(*events)
        return self._issue(user.id, session.id, refresh_token, key, now)

    def refresh(self, command: Refresh) -> IssuedTokens:
        """A new pair for a usable refresh token, which is spent by this call.

        A spent token presented again is reuse (it was stolen, or the client
        is broken): the whole session is revoked, so both the thief's and the
        owner's tokens stop working. Within `reuse_overlap` of its spending
        it is instead taken as a concurrent refresh by the same client and
        gets a pair of its own.
        """
        token_value = command.refresh_token.strip()
        if not token_value or len(token_value) > MAX_REFRESH_TOKEN_LENGTH:
            raise InvalidRefreshToken
        key = self._keys.active()
        now = self._clock()
        reused: Session | None = None
        with self._uow_factory() as uow:
            token = uow.sessions.get_refresh_token(hash_refresh_token(token_value))
            if token is None:
                raise InvalidRefreshToken
            session = uow.sessions.get(token.session_id)
            if session is None or not session.is_active(now) or token.revoked_at is not None:
                raise InvalidRefreshToken("the session of this refresh token has ended")
            overlap = False
            if token.spent_at is not None:
                if now - token.spent_at > self._token_policy.reuse_overlap:
                    uow.sessions.revoke(session.id, now, REASON_REUSE)
                    event = audit.record(
                        uow,
                        audit.REUSE_DETECTED,
                        now,
                        **_who(session.user_id, session.id, command.client),
                        details={"spent_seconds_ago": int((now - token.spent_at).total_seconds())},
                    )
                    uow.commit()
                    reused = session
                else:
                    overlap = True
            elif now >= token.expires_at:
                raise InvalidRefreshToken("the refresh token has expired")
            if reused is None:
                new_value, new_token = self._new_refresh_token(session, now)
                if not overlap and not uow.sessions.spend_refresh_token(
                    token.id, now, new_token.id
                ):
                    overlap = True  # a concurrent refresh spent it a moment ago
                uow.sessions.add_refresh_token(new_token)
                uow.sessions.touch(session.id, now)
                event = audit.record(
                    uow,
                    audit.REFRESH_OVERLAP if overlap else audit.REFRESHED,
                    now,
                    **_who(session.user_id, session.id, command.client),
                )
                uow.commit()
        audit.emit(event)
        if reused is not None:
            self.revocations.publish([(reused.id, now)])
            raise RefreshTokenReused
        return self._issue(session.user_id, session.id, new_value, key, now)

    def logout(self, caller: Caller, refresh_token: str = "") -> None:
        """End the session of `refresh_token` (or of the caller's access token).

        A token that is unknown or belongs to someone else changes nothing
        (and says nothing): logging out is always "done".
        """
        session_id = caller.session_id
        if refresh_token.strip():
            with self._uow_factory() as uow:
                token = uow.sessions.get_refresh_token(hash_refresh_token(refresh_token.strip()))
            session_id = token.session_id if token is not None else None
        if session_id:
            self._revoke(caller, [session_id], REASON_LOGOUT, audit.LOGOUT)

    def list_sessions(self, caller: Caller) -> list[Session]:
        """The caller's active sessions, most recently used first."""
        with self._uow_factory() as uow:
            return uow.sessions.active_for_user(caller.user_id, self._clock())

    def revoke_session(self, caller: Caller, session_id: str) -> None:
        """End one of the caller's sessions; SessionNotFound for any other id."""
        with self._uow_factory() as uow:
            session = uow.sessions.get(session_id.strip()) if _is_uuid(session_id) else None
        if session is None or session.user_id != caller.user_id:
            raise SessionNotFound
        self._revoke(caller, [session.id], REASON_REVOKED, audit.SESSION_REVOKED)

    def revoke_other_sessions(self, caller: Caller) -> int:
        """End every session of the caller but the current one; how many ended."""
        return len(self._revoke_others(caller, REASON_OTHERS, audit.OTHER_SESSIONS_REVOKED))

    def change_password(self, caller: Caller, command: ChangePassword) -> None:
        """Set a new password (the current one must match) and end every other session."""
        with self._uow_factory() as uow:
            user = uow.users.get(caller.user_id)
        if user is None:
            raise InvalidCredentials
        if not command.current_password:
            raise InvalidArgument(
                "the request has invalid fields",
                [FieldViolation("current_password", "is required")],
            )
        # Guessing the current password with a stolen access token is a
        # brute-force like any other: same counters as login.
        self._throttle.check(user.email, caller.client.address)
        if len(command.current_password) > self._password_policy.max_length or not (
            self._hasher.verify(user.password_hash, command.current_password)
        ):
            self._throttle.failed(user.email, caller.client.address)
            self._audit_alone(
                audit.PASSWORD_CHANGE_FAILED,
                user_id=user.id,
                session_id=caller.session_id,
                client=caller.client,
            )
            raise WrongPassword
        violations = self._password_policy.violations(
            command.new_password,
            field="new_password",
            personal=(user.email, user.email.partition("@")[0]),
        )
        if violations:
            raise InvalidArgument("the new password is not acceptable", violations)
        new_hash = self._hasher.hash(command.new_password)
        self._revoke_others(
            caller, REASON_PASSWORD, audit.PASSWORD_CHANGED, new_password_hash=new_hash
        )

    def revoked_sessions(self, since: datetime | None) -> tuple[list[Session], datetime]:
        """Sessions revoked since `since` whose access tokens may still live, and
        the time of the answer (the next `since`)."""
        now = self._clock()
        return self.revocations.revoked_since(since), now

    def jwks(self) -> list[JsonWebKey]:
        """The public keys that verify access tokens."""
        return self._keys.published()

    def _rehash(self, stored_hash: str, password: str) -> str | None:
        """A hash with today's parameters when the stored one is outdated; None
        when it is current, or when the hashing pool is full (the login still
        succeeds, and the next one rehashes)."""
        if not self._hasher.needs_rehash(stored_hash):
            return None
        try:
            return self._hasher.hash(password)
        except PasswordHashingBusy:
            return None

    def _check_login_fields(self, command: Login) -> None:
        violations: list[FieldViolation] = []
        if not command.email.strip():
            violations.append(FieldViolation("email", "is required"))
        if not command.password:
            violations.append(FieldViolation("password", "is required"))
        elif len(command.password) > self._password_policy.max_length:
            # No account has a longer password; refusing early bounds the hashing work.
            violations.append(
                FieldViolation(
                    "password", f"must be at most {self._password_policy.max_length} characters"
                )
            )
        if violations:
            raise InvalidArgument("the login request has invalid fields", violations)

    def _open_session(
        self, uow: UnitOfWork, user_id: str, client: ClientInfo, now: datetime
    ) -> tuple[Session, str]:
        expires_at = now + self._token_policy.refresh_ttl
        session = Session(
            id=str(uuid.uuid4()),
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
            client_address=_clip(client.address, MAX_CLIENT_ADDRESS_LENGTH),
            user_agent=_clip(client.user_agent, MAX_USER_AGENT_LENGTH),
        )
        uow.sessions.add(session)
        refresh_token, token = self._new_refresh_token(session, now)
        uow.sessions.add_refresh_token(token)
        return session, refresh_token

    def _new_refresh_token(self, session: Session, now: datetime) -> tuple[str, RefreshToken]:
        value = new_refresh_token()
        return value, RefreshToken(
            id=str(uuid.uuid4()),
            session_id=session.id,
            token_hash=hash_refresh_token(value),
            created_at=now,
            expires_at=self._token_policy.refresh_expiry(now, session.expires_at),
        )

    def _issue(
        self,
        user_id: str,
        session_id: str,
        refresh_token: str,
        key: ActiveKey,
        now: datetime,
    ) -> IssuedTokens:
        claims = AccessTokenClaims.issue(
            self._token_policy, user_id=user_id, session_id=session_id, now=now
        )
        access_token = self._signer.sign(
            claims.as_dict(),
            kid=key.kid,
            private_key=key.private_key,
            jwt_type=ACCESS_TOKEN_JWT_TYPE,
        )
        return IssuedTokens(
            user_id=user_id,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=claims.exp - claims.iat,
        )

    def _revoke(
        self, caller: Caller, session_ids: Sequence[str], reason: str, event_type: str
    ) -> None:
        now = self._clock()
        revoked: list[tuple[str, datetime]] = []
        events: list[AuditEvent] = []
        with self._uow_factory() as uow:
            for session_id in session_ids:
                session = uow.sessions.get(session_id)
                if session is None or session.user_id != caller.user_id:
                    continue
                if uow.sessions.revoke(session.id, now, reason):
                    revoked.append((session.id, now))
                    events.append(
                        audit.record(
                            uow,
                            event_type,
                            now,
                            **_who(caller.user_id, session.id, caller.client),
                            details={"by_session": caller.session_id or ""},
                        )
                    )
                elif session.revoked_at is not None:
                    # Already ended: publish again (a retry after an outage).
                    revoked.append((session.id, session.revoked_at))
            uow.commit()
        audit.emit(*events)
        self.revocations.publish(revoked)

    def _revoke_others(
        self,
        caller: Caller,
        reason: str,
        event_type: str,
        *,
        new_password_hash: str | None = None,
    ) -> list[str]:
        now = self._clock()
        revoked: list[str] = []
        with self._uow_factory() as uow:
            if new_password_hash is not None:
                uow.users.update_password_hash(caller.user_id, new_password_hash, now)
            for session in uow.sessions.active_for_user(caller.user_id, now):
                if session.id != caller.session_id and uow.sessions.revoke(session.id, now, reason):
                    revoked.append(session.id)
            event = audit.record(
                uow,
                event_type,
                now,
                **_who(caller.user_id, caller.session_id, caller.client),
                details={"revoked_sessions": len(revoked)},
            )
            uow.commit()
        audit.emit(event)
        self.revocations.publish([(session_id, now) for session_id in revoked])
        return revoked

    def _audit_alone(
        self,
        event_type: str,
        *,
        client: ClientInfo,
        user_id: str | None = None,
        session_id: str | None = None,
        details: dict[str, str | int | bool] | None = None,
    ) -> None:
        """An audit event with no other change (a refused attempt)."""
        with self._uow_factory() as uow:
            event = audit.record(
                uow, event_type, self._clock(), **_who(user_id, session_id, client), details=details
            )
            uow.commit()
        audit.emit(event)


class _Who(TypedDict):
    user_id: str | None
    session_id: str | None
    client_address: str | None
    user_agent: str | None


def _who(user_id: str | None, session_id: str | None, client: ClientInfo) -> _Who:
    return {
        "user_id": user_id,
        "session_id": session_id,
        "client_address": _clip(client.address, MAX_CLIENT_ADDRESS_LENGTH),
        "user_agent": _clip(client.user_agent, MAX_USER_AGENT_LENGTH),
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value.strip())
    except ValueError:
        return False
    return True


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else None
