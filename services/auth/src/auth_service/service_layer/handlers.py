"""The auth use cases: sign up, log in, publish the JWKS."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from switchyard_kit import FieldViolation, InvalidArgument

from auth_service.domain.display_names import InvalidDisplayName, normalize_display_name
from auth_service.domain.emails import InvalidEmail, normalize_email
from auth_service.domain.errors import EmailTaken, InvalidCredentials
from auth_service.domain.model import RefreshToken, Session, User
from auth_service.domain.passwords import PasswordPolicy
from auth_service.domain.tokens import (
    AccessTokenClaims,
    IssuedTokens,
    JsonWebKey,
    TokenPolicy,
    hash_refresh_token,
    new_refresh_token,
)
from auth_service.service_layer.keys import ActiveKey, KeyRing
from auth_service.service_layer.ports import (
    PasswordHasher,
    ProfileDirectory,
    TokenSigner,
    UnitOfWork,
)

logger = logging.getLogger(__name__)

# Longest client details kept with a session (they come from HTTP headers).
MAX_USER_AGENT_LENGTH = 512
MAX_CLIENT_ADDRESS_LENGTH = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


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
                           profiles=profiles, token_policy=token_policy)
        tokens = auth.sign_up(SignUp("ann@example.com", "a long passphrase"))
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        *,
        hasher: PasswordHasher,
        signer: TokenSigner,
        keys: KeyRing,
        profiles: ProfileDirectory,
        token_policy: TokenPolicy,
        password_policy: PasswordPolicy | None = None,
        profile_timeout_seconds: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow_factory = uow_factory
        self._hasher = hasher
        self._signer = signer
        self._keys = keys
        self._profiles = profiles
        self._token_policy = token_policy
        self._password_policy = password_policy or PasswordPolicy()
        self._profile_timeout = profile_timeout_seconds
        self._clock = clock

    def sign_up(
        self, command: SignUp, time_remaining: Callable[[], float | None] = lambda: None
    ) -> IssuedTokens:
        """Create the account and its first session; then tell the profile service.

        `time_remaining` gives what is left of the caller's deadline, which
        bounds the profile call. A failed profile call does not fail the
        signup: the profile service creates missing profiles on first read.
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
            uow.commit()
        logger.info("user signed up", extra={"user_id": user.id, "session_id": session.id})
        tokens = self._issue(user.id, session.id, refresh_token, key, now)
        self._create_profile(user.id, valid.display_name, time_remaining)
        return tokens

    def login(self, command: Login) -> IssuedTokens:
        """Tokens for a matching email and password; InvalidCredentials otherwise.

        Unknown email and wrong password fail alike and take alike: for an
        unknown email a dummy hash is verified, so the slow hash runs either way.
        """
        self._check_login_fields(command)
        try:
            email: str | None = normalize_email(command.email)
        except InvalidEmail:
            email = None
        user: User | None = None
        if email is not None:
            with self._uow_factory() as uow:
                user = uow.users.get_by_email(email)
        stored_hash = user.password_hash if user is not None else self._hasher.dummy_hash
        matches = self._hasher.verify(stored_hash, command.password)
        if user is None or not matches:
            logger.info("login refused", extra={"known_user": user is not None})
            raise InvalidCredentials
        new_hash = (
            self._hasher.hash(command.password) if self._hasher.needs_rehash(stored_hash) else None
        )
        key = self._keys.active()
        now = self._clock()
        with self._uow_factory() as uow:
            if new_hash is not None:
                uow.users.update_password_hash(user.id, new_hash, now)
            session, refresh_token = self._open_session(uow, user.id, command.client, now)
            uow.commit()
        if new_hash is not None:
            logger.info("password rehashed", extra={"user_id": user.id})
        logger.info("user logged in", extra={"user_id": user.id, "session_id": session.id})
        return self._issue(user.id, session.id, refresh_token, key, now)

    def jwks(self) -> list[JsonWebKey]:
        """The public keys that verify access tokens."""
        return self._keys.published()

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
        refresh_token = new_refresh_token()
        uow.sessions.add(session)
        uow.sessions.add_refresh_token(
            RefreshToken(
                id=str(uuid.uuid4()),
                session_id=session.id,
                token_hash=hash_refresh_token(refresh_token),
                created_at=now,
                expires_at=expires_at,
            )
        )
        return session, refresh_token

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
        access_token = self._signer.sign(claims.as_dict(), kid=key.kid, private_key=key.private_key)
        return IssuedTokens(
            user_id=user_id,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=claims.exp - claims.iat,
        )

    def _create_profile(
        self, user_id: str, display_name: str, time_remaining: Callable[[], float | None]
    ) -> None:
        remaining = time_remaining()
        timeout = self._profile_timeout
        if remaining is not None:
            timeout = min(timeout, remaining)
        if timeout <= 0:
            logger.warning("profile not created: no time left", extra={"user_id": user_id})
            return
        try:
            self._profiles.create_profile(user_id, display_name, timeout=timeout)
        except Exception as exc:
            # The account is committed: the caller gets its tokens whatever
            # happens here, and the profile service creates the profile on
            # first read. Any failure, expected or not, is logged, not raised.
            logger.warning(
                "profile not created; it will be created on first read",
                extra={"user_id": user_id, "error": type(exc).__name__, "detail": str(exc)[:200]},
            )


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else None
