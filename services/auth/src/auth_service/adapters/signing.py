"""Ed25519 key pairs, EdDSA JWTs (PyJWT), and the sealing of private keys at rest."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auth_service.domain.model import PLAINTEXT
from auth_service.domain.tokens import ALGORITHM, base64url
from auth_service.service_layer.ports import NewKeyPair, SigningKeyUnavailable

logger = logging.getLogger(__name__)

FERNET = "fernet"
_HKDF_INFO = b"switchyard-auth signing-key encryption v1"


class Ed25519JwtSigner:
    """Makes Ed25519 key pairs and signs JWTs with them (alg EdDSA)."""

    def __init__(self) -> None:
        self._loaded: dict[bytes, Ed25519PrivateKey] = {}

    def new_key_pair(self) -> NewKeyPair:
        private_key = Ed25519PrivateKey.generate()
        public_raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return NewKeyPair(
            public_key=base64url(public_raw), private_key=private_key.private_bytes_raw()
        )

    def sign(
        self, claims: Mapping[str, object], *, kid: str, private_key: bytes, jwt_type: str
    ) -> str:
        key = self._loaded.get(private_key)
        if key is None:
            key = Ed25519PrivateKey.from_private_bytes(private_key)
            self._loaded = {private_key: key}
        return jwt.encode(
            dict(claims), key, algorithm=ALGORITHM, headers={"kid": kid, "typ": jwt_type}
        )


def fernet_key(secret: str) -> bytes:
    """A Fernet key derived from a secret of any form (HKDF-SHA256), so an
    operator may set any long random string, not only a Fernet key."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived)


class FernetKeyVault:
    """Seals private keys with Fernet (AES-128-CBC + HMAC-SHA256).

    `secrets` are newest first: the first seals, each one opens, so the
    secret can be rotated by prepending the new one.
    """

    encryption = FERNET

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("FernetKeyVault needs at least one secret")
        self._fernet = MultiFernet([Fernet(fernet_key(secret)) for secret in secrets])

    def seal(self, private_key: bytes) -> str:
        return self._fernet.encrypt(private_key).decode("ascii")

    def open(self, sealed: str, encryption: str) -> bytes:
        if encryption == PLAINTEXT:
            logger.warning("signing key stored unencrypted; rotate it after setting the secret")
            return _decode_plain(sealed)
        if encryption != FERNET:
            raise SigningKeyUnavailable(f"unknown key encryption {encryption!r}")
        try:
            return self._fernet.decrypt(sealed.encode("ascii"))
        except InvalidToken:
            raise SigningKeyUnavailable(
                "a stored signing key cannot be decrypted: AUTH_SIGNING_KEY_SECRET does not "
                "match the secret it was sealed with"
            ) from None


class PlaintextKeyVault:
    """Development only (no AUTH_SIGNING_KEY_SECRET): keys stored as they are."""

    encryption = PLAINTEXT

    def seal(self, private_key: bytes) -> str:
        return base64url(private_key)

    def open(self, sealed: str, encryption: str) -> bytes:
        if encryption != PLAINTEXT:
            raise SigningKeyUnavailable(
                f"a stored signing key is sealed ({encryption}); set AUTH_SIGNING_KEY_SECRET"
            )
        return _decode_plain(sealed)


def _decode_plain(sealed: str) -> bytes:
    return base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
