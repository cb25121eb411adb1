"""Token rules: access-token claims, opaque refresh tokens, JSON Web Keys."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TOKEN_TYPE = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
# The JOSE header `typ` of an access token (RFC 9068 section 2.1): verifiers
# refuse a JWT without it, so no other JWT signed with the same key (an ID
# token, a future token kind) can pass for an access token (RFC 8725 3.11).
ACCESS_TOKEN_JWT_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
ALGORITHM = "EdDSA"
KEY_TYPE = "OKP"
CURVE = "Ed25519"
KEY_USE = "sig"
# 32 random bytes: 256 bits, beyond any guessing.
REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True)
class TokenPolicy:
    """Who issues tokens, for whom, and for how long.

    `refresh_ttl` is a session's absolute lifetime; `refresh_idle_ttl` how
    long one refresh token stays usable (the idle timeout: each refresh
    starts a new one, never beyond the absolute end). A spent refresh token
    presented again within `reuse_overlap` of its use is a concurrent refresh
    by the same client, not reuse.
    """

    issuer: str
    audience: str
    access_ttl: timedelta
    refresh_ttl: timedelta
    refresh_idle_ttl: timedelta | None = None
    reuse_overlap: timedelta = timedelta(seconds=5)

    def refresh_expiry(self, now: datetime, session_expires_at: datetime) -> datetime:
        """When a refresh token issued at `now` stops working."""
        if self.refresh_idle_ttl is None:
            return session_expires_at
        return min(now + self.refresh_idle_ttl, session_expires_at)


@dataclass(frozen=True)
class AccessTokenClaims:
    """The claims of an access token (the JWT contract with the gateway)."""

    iss: str
    aud: str
    sub: str
    iat: int
    nbf: int
    exp: int
    jti: str
    sid: str

    @classmethod
    def issue(
        cls, policy: TokenPolicy, *, user_id: str, session_id: str, now: datetime
    ) -> AccessTokenClaims:
        issued_at = int(now.timestamp())
        return cls(
            iss=policy.issuer,
            aud=policy.audience,
            sub=user_id,
            iat=issued_at,
            nbf=issued_at,
            exp=issued_at + int(policy.access_ttl.total_seconds()),
            jti=str(uuid.uuid4()),
            sid=session_id,
        )

    def as_dict(self) -> dict[str, str | int]:
        return {
            "iss": self.iss,
            "aud": self.aud,
            "sub": self.sub,
            "iat": self.iat,
            "nbf": self.nbf,
            "exp": self.exp,
            "jti": self.jti,
            "sid": self.sid,
        }


@dataclass(frozen=True)
class IssuedTokens:
    """What a client receives after signing in."""

    user_id: str
    # Kept out of repr so a stray log line cannot leak them.
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    token_type: str = TOKEN_TYPE


def new_refresh_token() -> str:
    """A fresh opaque refresh token (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    """The SHA-256 (hex) the database keeps instead of the token. A plain hash
    suffices: the token is random, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def base64url(data: bytes) -> str:
    """Base64url without padding, as JOSE writes binary values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class JsonWebKey:
    """A public Ed25519 key as a JWK (RFC 8037)."""

    kid: str
    x: str
    kty: str = KEY_TYPE
    crv: str = CURVE
    alg: str = ALGORITHM
    use: str = KEY_USE


def key_id(public_key_x: str) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key:
    a key id derived from the key itself, the same wherever it is computed."""
    canonical = json.dumps(
        {"crv": CURVE, "kty": KEY_TYPE, "x": public_key_x}, separators=(",", ":"), sort_keys=True
    )
    return base64url(hashlib.sha256(canonical.encode("utf-8")).digest())
