"""Access-token verification: EdDSA JWTs checked against AuthService's JWKS.

The signing keys are fetched from AuthService.GetJwks on first need and kept
per process for a TTL. A token whose `kid` is unknown triggers one refetch
(keys rotate), but at most once per interval, so a flood of forged kids
cannot turn into a flood of calls to auth. When auth cannot be reached, the
keys already held are kept; with none held, protected routes answer 503.

With a revocation check (gateway.revocation), a token whose session (`sid`)
was revoked (logout, session revoked, password changed, refresh-token reuse)
is refused too, before it expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cachetools import TLRUCache

from gateway.problems import ApiError
from gateway.revocation import RevocationCheck

logger = logging.getLogger("switchyard.gateway.tokens")

ALGORITHMS = ["EdDSA"]
# The JOSE `typ` every access token carries (RFC 9068 section 2.1). A JWT
# without it, or with another, is refused even when auth's key signed it, so
# no other kind of token can pass for an access token (RFC 8725 section 3.11).
# Media types are case-insensitive and may drop "application/" (RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="switchyard"'}

JwksFetcher = Callable[[], Sequence[Mapping[str, str]]]

# gRPC metadata carrying the verified token's `sid` to the backend (auth
# reads it to tell the caller's current session).


class KeysUnavailable(Exception):
    """No signing key is held and the auth service cannot be asked for one."""


def unauthenticated(detail: str, error: str = "invalid_token") -> ApiError:
    """A 401 with the RFC 6750 challenge."""
    challenge = (
        f'Bearer realm="switchyard", error="{error}"' if error else _CHALLENGE["WWW-Authenticate"]
    )
    return ApiError(401, detail, headers={"WWW-Authenticate": challenge})


class JwksCache:
    """The public keys by kid, refreshed after `ttl`, refetched on a kid miss
    at most once per `min_interval` (both in seconds)."""

    def __init__(
        self,
        fetch: JwksFetcher,
        ttl: float,
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_interval = min_interval
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def _may_fetch(self, now: float) -> bool:
        if self._attempted_at is None:
            return True
        # Holding no key at all, retry sooner: every protected route waits on it.
        interval = (
            self._min_interval if self._fetched_at is not None else min(self._min_interval, 1.0)
        )
        return now - self._attempted_at >= interval

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._ttl

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        self.fetch_count += 1
        try:
            jwks = self._fetch()
        except Exception:
            logger.warning("fetching signing keys failed", exc_info=True)
            return
        keys: dict[str, Any] = {}
        for jwk in jwks:
            kid = jwk.get("kid")
            if not kid or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            if jwk.get("use") not in (None, "", "sig") or jwk.get("alg") not in (None, "", "EdDSA"):
                continue
            try:
                keys[kid] = jwt.PyJWK({k: v for k, v in jwk.items() if v}, "EdDSA").key
            except (jwt.PyJWKError, ValueError, TypeError):
                logger.warning("ignoring a malformed signing key", extra={"kid": kid})
        self._keys = keys
        self._fetched_at = now
        logger.info("signing keys fetched", extra={"kids": sorted(keys)})

    def key(self, kid: str) -> Any | None:
        """The key for `kid`; None when unknown. Raises KeysUnavailable when no
        key at all is held and none could be fetched."""
        with self._lock:
            now = self._clock()
            if (self._stale(now) and self._may_fetch(now)) or (
                kid not in self._keys and self._may_fetch(now)
            ):
                self._refresh(now)
            if not self._keys and self._fetched_at is None:
                raise KeysUnavailable("no signing keys")
            return self._keys.get(kid)


@dataclass(frozen=True)
class VerifiedToken:
    user_id: str
    claims: Mapping[str, Any]

    @property
    def session_id(self) -> str | None:
        """The token's `sid`: the session it belongs to."""
        sid = self.claims.get("sid")
        return sid if isinstance(sid, str) and sid else None


class TokenVerifier:
    """Verifies `Authorization: Bearer <jwt>` headers.

    Example::

        verifier = TokenVerifier(cache, issuer="switchyard-auth", audience="switchyard-api")
        user_id = verifier.verify_header(request.headers.get("Authorization")).user_id
    """

    def __init__(
        self,
        keys: JwksCache,
        issuer: str,
        audience: str,
        leeway: float = 10.0,
        revocations: RevocationCheck | None = None,
        *,
        verified_cache_size: int = 10_000,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._revocations = revocations
        # Tokens already verified by this worker, until their own expiry: a
        # client sends the same token on every request, and decoding plus the
        # Ed25519 check were the largest part of the gateway's CPU per request
        # (bench/CAPACITY.md). Keyed by the whole token, signature included;
        # revocation is still checked on every request.
        self._verified: TLRUCache[str, VerifiedToken] = TLRUCache(
            maxsize=verified_cache_size, ttu=self._until_expiry
        )
        self._verified_lock = threading.Lock()

    def _until_expiry(self, _token: str, verified: VerifiedToken, now: float) -> float:
        exp = verified.claims.get("exp")
        seconds_left = float(exp) + self._leeway - time.time() if isinstance(exp, int) else 0.0
        return now + max(0.0, seconds_left)

    def verify_header(self, header: str | None) -> VerifiedToken:
        if not header:
            raise unauthenticated("this route needs a bearer token", error="")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated(
                "the Authorization header must be 'Bearer <token>'", "invalid_request"
            )
        return self.verify(token.strip())

    def verify(self, token: str) -> VerifiedToken:
        with self._verified_lock:
            verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_signature_and_claims(token)
            with self._verified_lock:
                self._verified[token] = verified
        if self._revocations is not None:
            session_id = verified.session_id
            if session_id is None or len(session_id) > 128:
                raise unauthenticated("the access token names no session")
            if self._revocations.is_revoked(session_id):
                raise unauthenticated("the session of this access token has ended")
        return verified

    def _verify_signature_and_claims(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthenticated("the access token is malformed") from None
        if header.get("alg") not in ALGORITHMS:
            raise unauthenticated("the access token is not signed with an accepted algorithm")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise unauthenticated("the token is not an access token (typ must be at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise unauthenticated("the access token names no signing key")
        try:
            key = self._keys.key(kid)
        except KeysUnavailable:
            raise ApiError(
                503, "access tokens cannot be verified right now; try again later"
            ) from None
        if key is None:
            raise unauthenticated("the access token is signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise unauthenticated("the access token is not valid yet") from None
        except jwt.InvalidTokenError:
            raise unauthenticated("the access token is invalid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise unauthenticated("the access token has no valid subject")
        return VerifiedToken(user_id=subject, claims=claims)
