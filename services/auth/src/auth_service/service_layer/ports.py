"""What the use cases need from the outside world, as interfaces.

The adapters implement them against SQLAlchemy, argon2, Ed25519/JWT, Fernet
and gRPC; the unit tests implement them with small in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from switchyard_kit import Transaction

from auth_service.domain.events import UserRegistered
from auth_service.domain.model import AuditEvent, RefreshToken, Session, SigningKey, User


class UserRepository(Protocol):
    def add(self, user: User) -> None:
        """Store a new user; raises EmailTaken when the email is in use."""

    def get(self, user_id: str) -> User | None: ...

    def get_by_email(self, email: str) -> User | None:
        """The user with this normalised email, if any."""

    def exists_with_email(self, email: str) -> bool: ...

    def update_password_hash(self, user_id: str, password_hash: str, now: datetime) -> None: ...


class SessionRepository(Protocol):
    def add(self, session: Session) -> None: ...

    def get(self, session_id: str) -> Session | None: ...

    def add_refresh_token(self, token: RefreshToken) -> None: ...

    def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token whose SHA-256 is `token_hash`, if any."""

    def spend_refresh_token(self, token_id: str, now: datetime, replaced_by_id: str) -> bool:
        """Mark the token spent if it is not yet (compare-and-set); False when
        another request spent it first."""

    def touch(self, session_id: str, now: datetime) -> None:
        """Record that the session's refresh token was used at `now`."""

    def revoke(self, session_id: str, now: datetime, reason: str) -> bool:
        """End the session and every refresh token of it; False when it was
        already revoked."""

    def active_for_user(self, user_id: str, now: datetime) -> list[Session]:
        """The user's unrevoked, unexpired sessions, most recently used first."""

    def revoked_since(self, since: datetime) -> list[Session]:
        """Sessions revoked at or after `since`."""


class AuditTrail(Protocol):
    def add(self, event: AuditEvent) -> None:
        """Store one audit event (in the unit of work's transaction)."""


class Outbox(Protocol):
    def add(self, event: UserRegistered) -> None:
        """Queue an event for the relay (in the unit of work's transaction)."""


class SigningKeyRepository(Protocol):
    def add(self, key: SigningKey) -> None: ...

    def signing(self, now: datetime) -> list[SigningKey]:
        """Keys that may sign at `now`, oldest first (ties by kid)."""

    def published(self, now: datetime) -> list[SigningKey]:
        """Keys whose public half is in the JWKS at `now`, oldest first."""

    def retire(self, kid: str, signing_until: datetime, retired_at: datetime) -> None:
        """Stop `kid` signing at `signing_until` and unpublish it at `retired_at`."""


class UnitOfWork(Transaction, Protocol):
    """One transaction over the repositories: `with uow: ...; uow.commit()`.
    Leaving the block without commit rolls back."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def signing_keys(self) -> SigningKeyRepository: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def outbox(self) -> Outbox: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str:
        """A salted slow hash (PHC string) of `password`."""

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False on mismatch or a malformed hash."""

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's."""

    @property
    def dummy_hash(self) -> str:
        """A hash of a random password with today's parameters, verified for
        unknown emails so both login failures take the same time."""


@dataclass(frozen=True)
class NewKeyPair:
    """A freshly generated Ed25519 key pair: raw public key as JWK `x`, raw private seed."""

    public_key: str
    private_key: bytes


class TokenSigner(Protocol):
    def new_key_pair(self) -> NewKeyPair: ...

    def sign(
        self, claims: Mapping[str, object], *, kid: str, private_key: bytes, jwt_type: str
    ) -> str:
        """A compact JWS (EdDSA) over `claims` with `kid` and `typ` (`jwt_type`)
        in its header."""


class KeyVault(Protocol):
    """Seals private signing keys for storage and opens them again."""

    @property
    def encryption(self) -> str:
        """The name stored beside sealed keys ("fernet", or "none" in development)."""

    def seal(self, private_key: bytes) -> str: ...

    def open(self, sealed: str, encryption: str) -> bytes:
        """The private key; raises SigningKeyUnavailable when it cannot be opened."""


class RevocationPublisher(Protocol):
    """Tells the gateways that a session's access tokens no longer count."""

    def session_revoked(self, session_id: str, revoked_at: datetime) -> None:
        """Publish the revocation; raises RevocationNotPublished when it could not."""


class ProfileDirectory(Protocol):
    """The profile service, as far as signup needs it."""

    def create_profile(self, user_id: str, display_name: str) -> bool:
        """Create the new account's profile now (idempotent); False when the
        profile service could not be reached in time. Never raises: the
        UserRegistered event in the outbox creates it later in that case."""


class RevocationNotPublished(RuntimeError):
    """The revoked-session set could not be written (Redis down)."""


class AttemptStore(Protocol):
    """Failed-login counters, blocks and known (account, address) pairs
    (Redis, or in-process).

    A counter forgets itself `window_seconds` after its last (or first)
    failure; a block is a key that lives exactly as long as the wait it
    imposes; a remembered key lives as long as it is remembered for.
    """

    def blocked_for(self, keys: Sequence[str]) -> float:
        """Seconds until every key in `keys` may try again; 0 when all may now."""

    def add_failure(self, key: str, window_seconds: float, *, sliding: bool = True) -> int:
        """Count one failure of `key`; the count within the window, this one
        included. A sliding window ends `window_seconds` after the last
        failure, a fixed one that long after the first."""

    def block(self, key: str, seconds: float) -> None:
        """Refuse `key` for the next `seconds`."""

    def reset(self, key: str) -> None:
        """Forget the failures of `key` (after a successful login)."""

    def remember(self, key: str, seconds: float) -> None:
        """Note `key` (a known (account, address) pair) for the next `seconds`."""

    def is_remembered(self, key: str) -> bool:
        """True while `key` is noted."""


class SigningKeyUnavailable(RuntimeError):
    """A stored private key cannot be opened (a wrong or missing
    AUTH_SIGNING_KEY_SECRET): a deployment error, reported as INTERNAL."""


class RetentionStore(Protocol):
    """What the retention job deletes; each call is bounded per run."""

    def delete_sessions_ended_before(self, cutoff: datetime) -> int:
        """Sessions (with their refresh tokens) that expired or were revoked
        before `cutoff`; how many went."""
        ...

    def delete_audit_events_before(self, cutoff: datetime) -> int:
        """Audit events that occurred before `cutoff`; how many went."""
        ...
