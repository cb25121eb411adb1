"""Entities the auth service keeps: users, sessions, refresh tokens, signing keys,
audit events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class User:
    """An account. `email` is the normalised address (see `emails.normalize_email`);
    `password_hash` is an argon2id PHC string, never the password."""

    id: str
    email: str
    password_hash: str = field(repr=False)
    created_at: datetime
    updated_at: datetime


@dataclass
class Session:
    """One sign-in of one user: the `sid` of its access tokens and the family of
    its refresh tokens. Revoking it ends every token of the family."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    client_address: str | None = None
    user_agent: str | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None
    last_used_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass
class RefreshToken:
    """A refresh token of a session, kept only as the SHA-256 of the opaque value.

    Rotation spends a token (`spent_at`, `replaced_by_id`); presenting a spent
    one again is reuse and revokes the session.
    """

    id: str
    session_id: str
    token_hash: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    spent_at: datetime | None = None
    revoked_at: datetime | None = None
    replaced_by_id: str | None = None

    def is_usable(self, now: datetime) -> bool:
        return self.spent_at is None and self.revoked_at is None and now < self.expires_at


PLAINTEXT = "none"


@dataclass
class SigningKey:
    """A key pair that signs access tokens.

    `public_key` is the raw Ed25519 public key, base64url without padding (the
    JWK `x`). `private_key` is the private key as stored: sealed by the key
    vault named in `key_encryption` ("fernet"), or "none" in development.
    A key signs while `signing_until` is unset or in the future, and is
    published in the JWKS until `retired_at`, so tokens it signed keep
    verifying after a rotation.
    """

    kid: str
    algorithm: str
    public_key: str
    private_key: str = field(repr=False)
    key_encryption: str
    created_at: datetime
    signing_until: datetime | None = None
    retired_at: datetime | None = None

    def can_sign(self, now: datetime) -> bool:
        return self.is_published(now) and (self.signing_until is None or now < self.signing_until)

    def is_published(self, now: datetime) -> bool:
        return self.retired_at is None or now < self.retired_at


@dataclass(frozen=True)
class AuditEvent:
    """Something security-relevant that happened (signup, login failure, reuse
    detected, ...). `details` holds plain facts, never a secret: no password,
    token or hash."""

    id: str
    occurred_at: datetime
    event_type: str
    user_id: str | None = None
    session_id: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    details: Mapping[str, str | int | bool] = field(default_factory=dict)
