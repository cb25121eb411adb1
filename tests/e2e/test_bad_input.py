"""Bad input gets a clear 4xx problem+json and writes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import jwt
import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from e2e.harness import Account, AuthActions, RunningPlatform

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert {"type", "title", "status", "detail", "request_id"} <= body.keys()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    return body


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_malformed_json_is_400_and_creates_nothing(api: httpx.Client) -> None:
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    response = api.post(
        "/v1/auth/signup",
        content=b'{"email": "' + email.encode() + b'", "password": ',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)
    login = api.post("/v1/auth/login", json={"email": email, "password": "whatever12345"})
    assert login.status_code == 401


def test_unknown_field_is_400_naming_it(api: httpx.Client) -> None:
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "a fine passphrase", "is_admin": True}
    problem = assert_problem(api.post("/v1/auth/signup", json=body), 400)
    assert "is_admin" in json.dumps(problem)
    login = api.post("/v1/auth/login", json={"email": email, "password": "a fine passphrase"})
    assert login.status_code == 401


def test_invalid_fields_are_listed(api: httpx.Client) -> None:
    problem = assert_problem(
        api.post("/v1/auth/signup", json={"email": "not-an-email", "password": "short"}),
        400,
        "INVALID_ARGUMENT",
    )
    fields = {error["field"] for error in problem["errors"]}
    assert {"email", "password"} <= fields


def test_an_invalid_profile_update_changes_nothing(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup(display_name="Before")
    problem = assert_problem(
        api.patch(
            "/v1/profiles/me",
            headers=account.headers,
            json={"display_name": "After", "avatar_url": "javascript:alert(1)"},
        ),
        400,
        "INVALID_ARGUMENT",
    )
    assert "avatar_url" in {error["field"] for error in problem["errors"]}
    assert api.get("/v1/profiles/me", headers=account.headers).json()["display_name"] == "Before"


def test_oversize_body_is_413(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup()
    response = api.patch(
        "/v1/profiles/me", headers=account.headers, json={"bio": "x" * (2 * 1024 * 1024)}
    )
    assert_problem(response, 413)


def test_unknown_profile_is_404(api: httpx.Client, auth: AuthActions) -> None:
    account = auth.signup()
    assert_problem(
        api.get(f"/v1/profiles/{uuid.uuid4()}", headers=account.headers), 404, "NOT_FOUND"
    )


def _real_signing_key(platform: RunningPlatform) -> tuple[str, Ed25519PrivateKey]:
    """The auth service's current private key, read from its database as an
    operator could (the test platform runs without key encryption)."""
    engine = sqlalchemy.create_engine(platform.database_url("auth"))
    with engine.connect() as connection:
        kid, private_key = connection.execute(
            sqlalchemy.text(
                "SELECT kid, private_key FROM signing_keys WHERE key_encryption = 'none' "
                "AND retired_at IS NULL ORDER BY created_at LIMIT 1"
            )
        ).one()
    engine.dispose()
    raw = base64.urlsafe_b64decode(private_key + "=" * (-len(private_key) % 4))
    return kid, Ed25519PrivateKey.from_private_bytes(raw)


class TestTokens:
    """Every protected route refuses a missing, broken or forged token with 401."""

    @pytest.fixture
    def account(self, auth: AuthActions) -> Account:
        return auth.signup()

    def _claims(self, account: Account) -> dict:
        return jwt.decode(account.access_token, options={"verify_signature": False})

    def _assert_refused(self, api: httpx.Client, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = api.get("/v1/profiles/me", headers=headers)
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        ("change", "why"),
        [
            ({"exp": -60, "iat": -960}, "expired"),
            ({"nbf": 600}, "not yet valid"),
            ({"aud": "someone-else"}, "wrong audience"),
            ({"iss": "someone-else"}, "wrong issuer"),
        ],
    )
    def test_real_key_but_invalid_claims(
        self,
        api: httpx.Client,
        platform: RunningPlatform,
        account: Account,
        change: dict[str, object],
        why: str,
    ) -> None:
        kid, key = _real_signing_key(platform)
        claims = self._claims(account)
        header = {"kid": kid, "typ": "at+jwt"}
        valid = jwt.encode(claims, key, "EdDSA", headers=header)
        assert api.get("/v1/profiles/me", headers={"Authorization": f"Bearer {valid}"}).is_success
        now = int(time.time())
        for name, value in change.items():
            claims[name] = now + value if isinstance(value, int) else value
        self._assert_refused(api, jwt.encode(claims, key, "EdDSA", headers=header))

    def test_auth_marks_access_tokens_as_at_jwt(self, account: Account) -> None:
        assert jwt.get_unverified_header(account.access_token)["typ"] == "at+jwt"

    @pytest.mark.parametrize("typ", [None, "JWT", "refresh+jwt"])
    def test_real_key_and_claims_but_not_an_access_token(
        self, api: httpx.Client, platform: RunningPlatform, account: Account, typ: str | None
    ) -> None:
        # RFC 8725 section 3.11: an ID-token-like or refresh JWT signed by
        # auth's own key is not an access token (typ None: no typ at all).
        kid, key = _real_signing_key(platform)
        token = jwt.encode(self._claims(account), key, "EdDSA", headers={"kid": kid, "typ": typ})
        self._assert_refused(api, token)

    @pytest.mark.parametrize(
        "path", ["/v1/profiles/me", "/v1/profiles/00000000-0000-4000-8000-000000000000"]
    )
    def test_missing_token(self, api: httpx.Client, path: str) -> None:
        assert_problem(api.get(path), 401, "UNAUTHENTICATED")

    def test_garbage_token(self, api: httpx.Client) -> None:
        self._assert_refused(api, "not.a.jwt")

    def test_tampered_payload(self, api: httpx.Client, account: Account) -> None:
        header, _payload, signature = account.access_token.split(".")
        claims = self._claims(account) | {"sub": str(uuid.uuid4())}
        self._assert_refused(api, f"{header}.{_b64(claims)}.{signature}")

    def test_alg_none(self, api: httpx.Client, account: Account) -> None:
        kid = jwt.get_unverified_header(account.access_token)["kid"]
        header = _b64({"alg": "none", "typ": "JWT", "kid": kid})
        self._assert_refused(api, f"{header}.{_b64(self._claims(account))}.")

    def test_signed_with_another_key_under_the_real_kid(
        self, api: httpx.Client, account: Account
    ) -> None:
        kid = jwt.get_unverified_header(account.access_token)["kid"]
        forged = jwt.encode(
            self._claims(account), Ed25519PrivateKey.generate(), "EdDSA", headers={"kid": kid}
        )
        self._assert_refused(api, forged)

    def test_signed_with_an_unknown_kid(self, api: httpx.Client, account: Account) -> None:
        forged = jwt.encode(
            self._claims(account), Ed25519PrivateKey.generate(), "EdDSA", headers={"kid": "nope"}
        )
        self._assert_refused(api, forged)

    def test_hs256_with_the_public_key_as_secret(self, api: httpx.Client, account: Account) -> None:
        kid = jwt.get_unverified_header(account.access_token)["kid"]
        jwk = next(k for k in api.get("/v1/auth/jwks").json()["keys"] if k["kid"] == kid)
        header = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
        payload = _b64(self._claims(account))
        signing_input = f"{header}.{payload}".encode()
        for secret in (jwk["x"].encode(), json.dumps(jwk).encode()):
            signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
            token = (
                f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
            )
            self._assert_refused(api, token)
