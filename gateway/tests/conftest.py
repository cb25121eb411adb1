"""Shared fixtures of the gateway's tests: an Ed25519 signing key and tokens."""

from __future__ import annotations

import importlib
import sys

# pytest's importlib mode names these test modules gateway.tests.*, and so
# registers this folder (gateway/, which holds no __init__.py) as a namespace
# package "gateway" that hides the real package in gateway/src. Put the real
# package back before any test module imports from it.
if getattr(sys.modules.get("gateway"), "__file__", None) is None:
    del sys.modules["gateway"]
    importlib.import_module("gateway")

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ISSUER = "switchyard-auth"
AUDIENCE = "switchyard-api"
KID = "test-key-1"

TokenFactory = Callable[..., str]


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def jwks(signing_key: Ed25519PrivateKey) -> list[dict[str, str]]:
    return [public_jwk(signing_key, KID)]


@pytest.fixture(scope="session")
def make_token(signing_key: Ed25519PrivateKey) -> TokenFactory:
    """make_token(exp_in=900, kid=KID, key=signing_key, typ="at+jwt", **claims).

    A claim given as None is left out of the token.
    """

    def make(
        exp_in: int = 900,
        kid: str = KID,
        key: Any = None,
        algorithm: str = "EdDSA",
        typ: str | None = "at+jwt",
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + exp_in,
            "jti": uuid.uuid4().hex,
            "sid": uuid.uuid4().hex,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload,
            key if key is not None else signing_key,
            algorithm=algorithm,
            # typ None leaves the header without one (PyJWT drops an empty typ).
            headers={"kid": kid, "typ": typ},
        )

    return make
