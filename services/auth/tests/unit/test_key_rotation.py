"""Signing-key rotation: new tokens use the new key, the old stays published
until its tokens have expired."""

from __future__ import annotations

from datetime import timedelta

import jwt
from auth_service.service_layer.handlers import Login, SignUp

from .test_handlers import verify

PASSWORD = "a long passphrase"


def test_rotation_keeps_the_old_key_published_until_its_tokens_expire(
    auth, key_ring, database, clock
) -> None:
    old = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    old_kid = jwt.get_unverified_header(old.access_token)["kid"]
    rotation = key_ring.rotate(timedelta(seconds=930))
    assert rotation.previous_kids == [old_kid]
    new = auth.login(Login("ann@example.com", PASSWORD))
    assert jwt.get_unverified_header(new.access_token)["kid"] == rotation.kid != old_kid
    assert verify(auth, old.access_token)["sub"] == verify(auth, new.access_token)["sub"]
    assert {k.kid for k in auth.jwks()} == {old_kid, rotation.kid}
    assert rotation.retire_at == clock() + timedelta(seconds=930 + 300)
    clock.advance(930 + 300 + 1)
    assert {k.kid for k in auth.jwks()} == {rotation.kid}
    assert "signing_key_rotated" in database.audit_types()
