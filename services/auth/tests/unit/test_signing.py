from __future__ import annotations

import base64

import jwt
import pytest
from auth_service.adapters.signing import (
    Ed25519JwtSigner,
    FernetKeyVault,
    PlaintextKeyVault,
    fernet_key,
)
from auth_service.domain.tokens import base64url, key_id
from auth_service.service_layer.ports import SigningKeyUnavailable

SECRET = "a-long-random-secret-for-tests-0123456789"


def _public_jwk(x: str) -> jwt.PyJWK:
    return jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"})


def test_signer_makes_eddsa_tokens_with_kid() -> None:
    signer = Ed25519JwtSigner()
    pair = signer.new_key_pair()
    assert len(pair.private_key) == 32
    token = signer.sign({"sub": "u1"}, kid="kid-1", private_key=pair.private_key, jwt_type="at+jwt")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == "kid-1"
    assert header["typ"] == "at+jwt"
    claims = jwt.decode(token, _public_jwk(pair.public_key).key, algorithms=["EdDSA"])
    assert claims == {"sub": "u1"}


def test_key_id_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert key_id(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_fernet_vault_seals_and_opens() -> None:
    vault = FernetKeyVault([SECRET])
    sealed = vault.seal(b"\x01" * 32)
    assert base64url(b"\x01" * 32) not in sealed
    assert vault.open(sealed, "fernet") == b"\x01" * 32


def test_fernet_vault_with_the_wrong_secret_fails_clearly() -> None:
    sealed = FernetKeyVault([SECRET]).seal(b"\x01" * 32)
    with pytest.raises(SigningKeyUnavailable, match="AUTH_SIGNING_KEY_SECRET"):
        FernetKeyVault(["another-long-random-secret-0123456789"]).open(sealed, "fernet")


def test_fernet_vault_rotation_opens_keys_sealed_with_the_old_secret() -> None:
    sealed = FernetKeyVault([SECRET]).seal(b"\x02" * 32)
    rotated = FernetKeyVault(["the-new-long-random-secret-0123456789", SECRET])
    assert rotated.open(sealed, "fernet") == b"\x02" * 32


def test_fernet_key_accepts_any_secret_form() -> None:
    assert len(base64.urlsafe_b64decode(fernet_key("x"))) == 32
    assert fernet_key(SECRET) == fernet_key(SECRET)


def test_plaintext_vault_refuses_sealed_keys() -> None:
    sealed = FernetKeyVault([SECRET]).seal(b"\x01" * 32)
    with pytest.raises(SigningKeyUnavailable):
        PlaintextKeyVault().open(sealed, "fernet")
    assert PlaintextKeyVault().open(PlaintextKeyVault().seal(b"\x03" * 32), "none") == b"\x03" * 32


@pytest.fixture
def new_ring(make_key_ring):
    """`new_ring(database)`: a KeyRing sealing with Fernet, as a new process builds it."""
    return lambda database: make_key_ring(database, FernetKeyVault([SECRET]))


def test_key_ring_creates_one_key_and_reuses_it(new_ring, database) -> None:
    ring = new_ring(database)
    first = ring.active()
    assert ring.active() == first
    assert list(database.signing_keys) == [first.kid]
    stored = database.signing_keys[first.kid]
    assert stored.key_encryption == "fernet"
    assert base64url(first.private_key) not in stored.private_key
    assert stored.kid == key_id(stored.public_key)


def test_a_new_process_signs_with_the_stored_key(new_ring, database) -> None:
    kid = new_ring(database).active().kid
    assert new_ring(database).active().kid == kid


def test_rings_that_both_created_a_key_converge_on_the_oldest(
    new_ring, database, clock, make_database
) -> None:
    other = make_database()
    first = new_ring(database).active()
    clock.advance(1)
    second = new_ring(other).active()
    # Both keys end up in one database, as after a race on first use.
    database.signing_keys.update(other.signing_keys)
    assert new_ring(database).active().kid == first.kid
    assert {key.kid for key in new_ring(database).published()} == {first.kid, second.kid}


def test_published_keys_are_jwks(new_ring, database) -> None:
    ring = new_ring(database)
    (jwk,) = ring.published()
    assert (jwk.kty, jwk.crv, jwk.alg, jwk.use) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert jwk.kid == ring.active().kid
    assert _public_jwk(jwk.x).key is not None


def test_retired_keys_are_not_published(new_ring, database, clock) -> None:
    kid = new_ring(database).active().kid
    database.signing_keys[kid].retired_at = clock()
    clock.advance(1)
    fresh = new_ring(database)
    assert fresh.active().kid != kid
    assert [key.kid for key in fresh.published()] == [fresh.active().kid]


def test_a_key_that_cannot_be_opened_is_reported(new_ring, make_key_ring, database) -> None:
    new_ring(database).active()
    wrong = make_key_ring(database, FernetKeyVault(["another-long-random-secret-0123456789"]))
    with pytest.raises(SigningKeyUnavailable):
        wrong.active()
