from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway.problems import ApiError
from gateway.tokens import JwksCache, TokenVerifier

ISSUER = "switchyard-auth"
AUDIENCE = "switchyard-api"


class FakeJwksSource:
    """Stands in for AuthService.GetJwks: counts calls, can be made to fail."""

    def __init__(self, keys: Sequence[Mapping[str, str]]) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.down = False

    def __call__(self) -> Sequence[Mapping[str, str]]:
        self.calls += 1
        if self.down:
            raise ConnectionError("auth is down")
        return self.keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def source(jwks: list[dict[str, str]]) -> FakeJwksSource:
    return FakeJwksSource(jwks)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(source: FakeJwksSource, clock: Clock) -> TokenVerifier:
    cache = JwksCache(source, ttl=300, min_interval=30, clock=clock)
    return TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE, leeway=5)


def assert_401(verifier: TokenVerifier, token: str) -> ApiError:
    with pytest.raises(ApiError) as error:
        verifier.verify_header(f"Bearer {token}")
    assert error.value.status == 401
    assert error.value.headers["WWW-Authenticate"].startswith("Bearer")
    return error.value


def test_valid_token_yields_the_subject(
    verifier: TokenVerifier, make_token: Callable[..., str]
) -> None:
    token = make_token(sub="7d0c7a4e-9a43-4f0c-9d7e-1e1c4f5a6b7c")
    assert (
        verifier.verify_header(f"Bearer {token}").user_id == "7d0c7a4e-9a43-4f0c-9d7e-1e1c4f5a6b7c"
    )


def test_expired_token(verifier: TokenVerifier, make_token: Callable[..., str]) -> None:
    assert "expired" in assert_401(verifier, make_token(exp_in=-60)).detail


def test_not_yet_valid_token(verifier: TokenVerifier, make_token: Callable[..., str]) -> None:
    assert "not valid yet" in assert_401(verifier, make_token(nbf=int(time.time()) + 600)).detail


def test_small_clock_skew_is_tolerated(
    verifier: TokenVerifier, make_token: Callable[..., str]
) -> None:
    verifier.verify(make_token(nbf=int(time.time()) + 2))


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"sub": None},
        {"exp": None},
        {"iat": None},
        {"sub": ""},
    ],
)
def test_wrong_or_missing_claims(
    verifier: TokenVerifier, make_token: Callable[..., str], claims: dict[str, Any]
) -> None:
    assert_401(verifier, make_token(**claims))


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_the_access_token_type_is_accepted_in_each_spelling(
    verifier: TokenVerifier, make_token: Callable[..., str], typ: str
) -> None:
    verifier.verify(make_token(typ=typ))


@pytest.mark.parametrize("typ", [None, "JWT", "refresh+jwt", "id_token", "at+jwt+x", ""])
def test_a_jwt_of_another_type_is_refused_though_signed_by_auths_key(
    verifier: TokenVerifier, make_token: Callable[..., str], typ: str | None
) -> None:
    # RFC 8725 section 3.11: same key, valid claims, but not an access token.
    assert "typ" in assert_401(verifier, make_token(typ=typ)).detail


def test_tampered_payload(verifier: TokenVerifier, make_token: Callable[..., str]) -> None:
    header, payload, signature = make_token(sub="alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_401(verifier, f"{header}.{forged}.{signature}")


def test_alg_none(verifier: TokenVerifier, make_token: Callable[..., str]) -> None:
    _, payload, _ = make_token().split(".")
    none_header = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "none", "typ": "JWT", "kid": "test-key-1"}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    assert_401(verifier, f"{none_header}.{payload}.")


def test_hs256_signed_with_the_public_key(
    verifier: TokenVerifier, signing_key: Ed25519PrivateKey
) -> None:
    public_bytes = signing_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 60}
    header = {"alg": "HS256", "kid": "test-key-1", "typ": "JWT"}
    signing_input = (
        base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    )
    signature = base64.urlsafe_b64encode(
        hmac.new(public_bytes, signing_input, hashlib.sha256).digest()
    ).rstrip(b"=")
    assert_401(verifier, (signing_input + b"." + signature).decode())


def test_signed_by_another_key(verifier: TokenVerifier, make_token: Callable[..., str]) -> None:
    assert_401(verifier, make_token(key=Ed25519PrivateKey.generate()))


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer ", "bearer not-a-jwt"])
def test_missing_or_malformed_header(verifier: TokenVerifier, header: str | None) -> None:
    with pytest.raises(ApiError) as error:
        verifier.verify_header(header)
    assert error.value.status == 401
    assert "WWW-Authenticate" in error.value.headers


def test_unknown_kid_refetches_once_per_interval(
    verifier: TokenVerifier, make_token: Callable[..., str], source: FakeJwksSource, clock: Clock
) -> None:
    verifier.verify(make_token())
    assert source.calls == 1
    assert_401(verifier, make_token(kid="rotated"))
    assert source.calls == 1  # fetched just now: a miss does not refetch yet
    clock.now += 31
    for _ in range(5):
        assert "unknown key" in assert_401(verifier, make_token(kid="rotated")).detail
    assert source.calls == 2  # one refetch for the misses, then rate limited
    clock.now += 31
    assert_401(verifier, make_token(kid="rotated"))
    assert source.calls == 3


def test_a_rotated_key_is_found_by_the_refetch(
    verifier: TokenVerifier, make_token: Callable[..., str], source: FakeJwksSource, clock: Clock
) -> None:
    verifier.verify(make_token())
    new_key = Ed25519PrivateKey.generate()
    raw = new_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    source.keys.append({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "rotated", "alg": "EdDSA"})
    clock.now += 31
    assert verifier.verify(make_token(kid="rotated", key=new_key, sub="bob")).user_id == "bob"


def test_keys_are_cached_for_the_ttl(
    verifier: TokenVerifier, make_token: Callable[..., str], source: FakeJwksSource, clock: Clock
) -> None:
    for _ in range(3):
        verifier.verify(make_token())
    assert source.calls == 1
    clock.now += 301
    verifier.verify(make_token())
    assert source.calls == 2


def test_stale_keys_are_kept_while_auth_is_down(
    verifier: TokenVerifier, make_token: Callable[..., str], source: FakeJwksSource, clock: Clock
) -> None:
    verifier.verify(make_token())
    source.down = True
    clock.now += 301
    verifier.verify(make_token())


def test_no_keys_and_auth_down_is_503(
    verifier: TokenVerifier, make_token: Callable[..., str], source: FakeJwksSource
) -> None:
    source.down = True
    with pytest.raises(ApiError) as error:
        verifier.verify(make_token())
    assert error.value.status == 503


def test_pyjwt_has_eddsa_support() -> None:
    assert jwt.algorithms.has_crypto


def test_a_verified_token_is_not_decoded_again(
    verifier: TokenVerifier, make_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token()
    first = verifier.verify(token)
    decodes: list[str] = []
    monkeypatch.setattr(
        "gateway.tokens.jwt.decode", lambda *args, **kwargs: decodes.append("decode")
    )
    assert verifier.verify(token) == first
    assert decodes == []


def test_a_cached_token_still_expires(
    verifier: TokenVerifier, make_token: Callable[..., str]
) -> None:
    # leeway is 5 s: a token expiring in -4 s is accepted, then must stop being so.
    token = make_token(exp_in=-4)
    verifier.verify(token)
    time.sleep(1.2)
    assert_401(verifier, token)


def test_a_cached_token_is_still_checked_for_revocation(
    source: FakeJwksSource, clock: Clock, make_token: Callable[..., str]
) -> None:
    revoked: set[str] = set()

    class Revocations:
        def is_revoked(self, session_id: str) -> bool:
            return session_id in revoked

    cache = JwksCache(source, ttl=300, min_interval=30, clock=clock)
    verifier = TokenVerifier(
        cache,
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway=5,
        revocations=Revocations(),  # type: ignore[arg-type]
    )
    token = make_token(sid="session-1")
    verifier.verify(token)
    revoked.add("session-1")
    assert_401(verifier, token)
