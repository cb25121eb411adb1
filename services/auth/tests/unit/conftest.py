"""Fakes of the auth ports (in-memory repositories, a cheap hasher, recording
revocation publisher, in-process attempt store) and an AuthService wired with them."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType

import pytest
from auth_service.adapters.signing import Ed25519JwtSigner, PlaintextKeyVault
from auth_service.adapters.throttling import InProcessAttemptStore
from auth_service.domain.errors import EmailTaken
from auth_service.domain.events import UserRegistered
from auth_service.domain.model import AuditEvent, RefreshToken, Session, SigningKey, User
from auth_service.domain.passwords import PasswordPolicy
from auth_service.domain.tokens import TokenPolicy
from auth_service.service_layer.handlers import AuthService
from auth_service.service_layer.keys import KeyRing
from auth_service.service_layer.ports import KeyVault, RevocationNotPublished
from auth_service.service_layer.revocations import Revocations
from auth_service.service_layer.throttle import LoginThrottle, ThrottlePolicy
from switchyard_kit import AlreadyExists

ISSUER = "switchyard-auth"
AUDIENCE = "switchyard-api"


class FakeUserRepository:
    def __init__(self, store: dict[str, User]) -> None:
        self._store = store

    def add(self, user: User) -> None:
        if any(existing.email == user.email for existing in self._store.values()):
            raise EmailTaken
        self._store[user.id] = user

    def get(self, user_id: str) -> User | None:
        return self._store.get(user_id)

    def get_by_email(self, email: str) -> User | None:
        return next((u for u in self._store.values() if u.email == email), None)

    def exists_with_email(self, email: str) -> bool:
        return self.get_by_email(email) is not None

    def update_password_hash(self, user_id: str, password_hash: str, now: datetime) -> None:
        user = self._store[user_id]
        user.password_hash = password_hash
        user.updated_at = now


class FakeSessionRepository:
    def __init__(self, sessions: dict[str, Session], tokens: dict[str, RefreshToken]) -> None:
        self._sessions = sessions
        self._tokens = tokens

    def add(self, session: Session) -> None:
        self._sessions[session.id] = session

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def add_refresh_token(self, token: RefreshToken) -> None:
        if token.token_hash in self._tokens:
            raise AlreadyExists("duplicate token hash")
        self._tokens[token.token_hash] = token

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        token = self._tokens.get(token_hash)
        return dataclasses.replace(token) if token is not None else None

    def spend_refresh_token(self, token_id: str, now: datetime, replaced_by_id: str) -> bool:
        for key, token in self._tokens.items():
            if token.id == token_id:
                if token.spent_at is not None:
                    return False
                self._tokens[key] = dataclasses.replace(
                    token, spent_at=now, replaced_by_id=replaced_by_id
                )
                return True
        return False

    def touch(self, session_id: str, now: datetime) -> None:
        self._sessions[session_id] = dataclasses.replace(
            self._sessions[session_id], last_used_at=now
        )

    def revoke(self, session_id: str, now: datetime, reason: str) -> bool:
        session = self._sessions[session_id]
        for key, token in self._tokens.items():
            if token.session_id == session_id and token.revoked_at is None:
                self._tokens[key] = dataclasses.replace(token, revoked_at=now)
        if session.revoked_at is not None:
            return False
        self._sessions[session_id] = dataclasses.replace(
            session, revoked_at=now, revoke_reason=reason
        )
        return True

    def active_for_user(self, user_id: str, now: datetime) -> list[Session]:
        found = [s for s in self._sessions.values() if s.user_id == user_id and s.is_active(now)]
        return sorted(found, key=lambda s: s.last_used_at or s.created_at, reverse=True)

    def revoked_since(self, since: datetime) -> list[Session]:
        return sorted(
            (s for s in self._sessions.values() if s.revoked_at and s.revoked_at >= since),
            key=lambda s: s.revoked_at or since,
        )


class FakeList(list):  # type: ignore[type-arg]
    def add(self, item: object) -> None:
        self.append(item)


class FakeSigningKeyRepository:
    def __init__(self, keys: dict[str, SigningKey]) -> None:
        self._keys = keys

    def add(self, key: SigningKey) -> None:
        self._keys[key.kid] = key

    def signing(self, now: datetime) -> list[SigningKey]:
        return sorted(
            (k for k in self._keys.values() if k.can_sign(now)), key=lambda k: (k.created_at, k.kid)
        )

    def published(self, now: datetime) -> list[SigningKey]:
        return sorted(
            (k for k in self._keys.values() if k.is_published(now)),
            key=lambda k: (k.created_at, k.kid),
        )

    def retire(self, kid: str, signing_until: datetime, retired_at: datetime) -> None:
        self._keys[kid] = dataclasses.replace(
            self._keys[kid], signing_until=signing_until, retired_at=retired_at
        )


class FakeDatabase:
    """What the fake units of work commit into."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.signing_keys: dict[str, SigningKey] = {}
        self.audit: list[AuditEvent] = []
        self.outbox: list[UserRegistered] = []
        self.commits = 0

    def audit_types(self) -> list[str]:
        return [event.event_type for event in self.audit]


class FakeUnitOfWork:
    """Works on copies and publishes them on commit, so an abandoned unit of
    work leaves the fake database as it was (like a rollback)."""

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database

    def __enter__(self) -> FakeUnitOfWork:
        db = self._database
        self._users = {k: User(**vars(v)) for k, v in db.users.items()}
        self._sessions = dict(db.sessions)
        self._tokens = dict(db.refresh_tokens)
        self._keys = dict(db.signing_keys)
        self.users = FakeUserRepository(self._users)
        self.sessions = FakeSessionRepository(self._sessions, self._tokens)
        self.signing_keys = FakeSigningKeyRepository(self._keys)
        self.audit = FakeList()
        self.outbox = FakeList()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        db = self._database
        db.users, db.sessions = self._users, self._sessions
        db.refresh_tokens, db.signing_keys = self._tokens, self._keys
        db.audit.extend(self.audit)
        db.outbox.extend(self.outbox)
        self.audit, self.outbox = FakeList(), FakeList()
        db.commits += 1


class FakeHasher:
    """Fast and transparent: `v1$salt$sha256`; records what it verified."""

    def __init__(self, version: str = "v1") -> None:
        self.version = version
        self.verified: list[str] = []
        self.dummy_hash = self.hash(secrets.token_hex(8))

    def hash(self, password: str) -> str:
        salt = secrets.token_hex(4)
        digest = hashlib.sha256((salt + password).encode()).hexdigest()
        return f"{self.version}${salt}${digest}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        _, salt, digest = password_hash.split("$")
        return hashlib.sha256((salt + password).encode()).hexdigest() == digest

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"{self.version}$")


class RecordingRevocationPublisher:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.failing = False

    def session_revoked(self, session_id: str, revoked_at: datetime) -> None:
        if self.failing:
            raise RevocationNotPublished("redis down")
        self.published.append(session_id)


class Clock:
    def __init__(self) -> None:
        # Real time (whole seconds), so PyJWT's own expiry checks apply.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def revocation_publisher() -> RecordingRevocationPublisher:
    return RecordingRevocationPublisher()


class FakeMonotonic:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return self.clock.now.timestamp()


@pytest.fixture
def attempts(clock: Clock) -> InProcessAttemptStore:
    return InProcessAttemptStore(clock=FakeMonotonic(clock))


@pytest.fixture
def throttle_policy() -> ThrottlePolicy:
    return ThrottlePolicy(
        account_address_free_failures=3, address_free_failures=5, account_free_failures=12
    )


@pytest.fixture
def token_policy() -> TokenPolicy:
    return TokenPolicy(
        issuer=ISSUER,
        audience=AUDIENCE,
        access_ttl=timedelta(seconds=900),
        refresh_ttl=timedelta(days=30),
        refresh_idle_ttl=timedelta(days=7),
        reuse_overlap=timedelta(seconds=5),
    )


@pytest.fixture
def make_database() -> Callable[[], FakeDatabase]:
    return FakeDatabase


@pytest.fixture
def make_key_ring(clock: Clock) -> Callable[..., KeyRing]:
    """`make_key_ring(database, vault=None)`: a KeyRing as a new process would build it."""

    def make(database: FakeDatabase, vault: KeyVault | None = None) -> KeyRing:
        return KeyRing(
            lambda: FakeUnitOfWork(database),
            Ed25519JwtSigner(),
            vault or PlaintextKeyVault(),
            clock,
        )

    return make


@pytest.fixture
def key_ring(database: FakeDatabase, make_key_ring: Callable[..., KeyRing]) -> KeyRing:
    return make_key_ring(database)


class RecordingProfileDirectory:
    """The profile service's CreateProfile: records each call; `reachable`
    False plays a profile service that does not answer."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []
        self.reachable = True

    def create_profile(self, user_id: str, display_name: str) -> bool:
        if not self.reachable:
            return False
        self.created.append((user_id, display_name))
        return True


@pytest.fixture
def profiles() -> RecordingProfileDirectory:
    return RecordingProfileDirectory()


@pytest.fixture
def auth(
    *,
    database: FakeDatabase,
    hasher: FakeHasher,
    key_ring: KeyRing,
    token_policy: TokenPolicy,
    clock: Clock,
    attempts: InProcessAttemptStore,
    throttle_policy: ThrottlePolicy,
    revocation_publisher: RecordingRevocationPublisher,
    profiles: RecordingProfileDirectory,
) -> AuthService:
    return AuthService(
        lambda: FakeUnitOfWork(database),
        hasher=hasher,
        signer=Ed25519JwtSigner(),
        keys=key_ring,
        token_policy=token_policy,
        throttle=LoginThrottle(attempts, throttle_policy),
        revocations=Revocations(
            lambda: FakeUnitOfWork(database),
            revocation_publisher,
            clock,
            lookback=timedelta(seconds=990),
        ),
        profiles=profiles,
        password_policy=PasswordPolicy(),
        clock=clock,
    )
