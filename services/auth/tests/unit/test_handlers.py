from __future__ import annotations

import jwt
import pytest
from auth_service.domain.errors import EmailTaken, InvalidCredentials
from auth_service.domain.tokens import hash_refresh_token
from auth_service.service_layer.handlers import ClientInfo, Login, SignUp
from switchyard_kit import InvalidArgument, Unauthenticated

PASSWORD = "a long passphrase"


def verify(auth, token: str) -> dict:
    """Check `token` the way the gateway does: JWKS from the service, PyJWT."""
    jwks = jwt.PyJWKSet.from_dict(
        {
            "keys": [
                {"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.use}
                for k in auth.jwks()
            ]
        }
    )
    header = jwt.get_unverified_header(token)
    # The access-token type (RFC 9068), which the gateway's verifier requires.
    assert header["typ"] == "at+jwt"
    key = jwks[header["kid"]]
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience="switchyard-api",
        issuer="switchyard-auth",
        options={"require": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "sid"]},
    )


def test_sign_up_returns_tokens_with_the_contract_claims(auth, database, clock) -> None:
    tokens = auth.sign_up(SignUp("Ann@Example.com", PASSWORD, "Ann"))
    assert tokens.token_type == "Bearer"
    assert tokens.expires_in == 900
    claims = verify(auth, tokens.access_token)
    assert claims["sub"] == tokens.user_id
    assert claims["iat"] == claims["nbf"] == int(clock().timestamp())
    assert claims["exp"] == claims["iat"] + 900
    assert claims["sid"] in database.sessions
    assert database.sessions[claims["sid"]].user_id == tokens.user_id
    (user,) = database.users.values()
    assert user.email == "ann@example.com"
    assert user.id == tokens.user_id


def test_each_token_has_its_own_jti(auth) -> None:
    first = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    second = auth.login(Login("ann@example.com", PASSWORD))
    assert verify(auth, first.access_token)["jti"] != verify(auth, second.access_token)["jti"]


def test_password_is_stored_only_as_a_hash(auth, database) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    (user,) = database.users.values()
    assert PASSWORD not in user.password_hash
    assert PASSWORD not in repr(user)


def test_refresh_token_is_opaque_and_stored_only_as_its_hash(auth, database, clock) -> None:
    tokens = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    assert len(tokens.refresh_token) >= 43
    assert tokens.refresh_token not in repr(tokens)
    (stored,) = database.refresh_tokens.values()
    assert stored.token_hash == hash_refresh_token(tokens.refresh_token)
    assert stored.token_hash != tokens.refresh_token
    assert stored.session_id == verify(auth, tokens.access_token)["sid"]
    assert (stored.expires_at - clock()).days == 7  # the idle timeout
    assert (database.sessions[stored.session_id].expires_at - clock()).days == 30
    assert stored.spent_at is None
    assert stored.revoked_at is None


def test_session_records_the_client(auth, database) -> None:
    auth.sign_up(
        SignUp("ann@example.com", PASSWORD, client=ClientInfo("203.0.113.9", "curl/8" + "x" * 600))
    )
    (session,) = database.sessions.values()
    assert session.client_address == "203.0.113.9"
    assert session.user_agent is not None
    assert len(session.user_agent) == 512


def test_duplicate_email_is_already_exists(auth, database) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    with pytest.raises(EmailTaken) as caught:
        auth.sign_up(SignUp(" ANN@example.com", "another passphrase"))
    assert caught.value.code == "ALREADY_EXISTS"
    assert caught.value.reason == "EMAIL_TAKEN"
    assert len(database.users) == 1


def test_invalid_fields_are_all_reported_and_nothing_is_written(auth, database) -> None:
    with pytest.raises(InvalidArgument) as caught:
        auth.sign_up(SignUp("not-an-email", "password", "x" * 65))
    fields = {v.field: v.description for v in caught.value.violations}
    assert set(fields) == {"email", "password", "display_name"}
    assert "too common" in fields["password"]
    assert database.users == {}
    assert database.sessions == {}
    assert database.commits == 0
    assert database.outbox == []


def test_password_equal_to_the_email_is_refused(auth) -> None:
    with pytest.raises(InvalidArgument) as caught:
        auth.sign_up(SignUp("annalee1984@example.com", "AnnaLee1984"))
    assert [v.field for v in caught.value.violations] == ["password"]


def test_sign_up_writes_user_registered_to_the_outbox_in_its_transaction(
    auth, database, key_ring
) -> None:
    key_ring.active()
    commits = database.commits
    tokens = auth.sign_up(SignUp("ann@example.com", PASSWORD, "  Ann Lee "))
    [event] = database.outbox
    assert (event.user_id, event.display_name) == (tokens.user_id, "Ann Lee")
    assert database.commits == commits + 1  # user, session, event and audit row together
    assert database.audit_types() == ["signup"]


def test_sign_up_creates_the_profile_before_it_answers(auth, database, profiles) -> None:
    tokens = auth.sign_up(SignUp("ann@example.com", PASSWORD, "  Ann Lee "))
    assert profiles.created == [(tokens.user_id, "Ann Lee")]
    # The event is still written: it is the backup when the call fails.
    assert [event.user_id for event in database.outbox] == [tokens.user_id]


def test_sign_up_succeeds_when_the_profile_service_does_not_answer(
    auth, database, profiles
) -> None:
    profiles.reachable = False
    tokens = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    assert tokens.access_token
    assert [event.user_id for event in database.outbox] == [tokens.user_id]


def test_login_returns_a_new_session(auth, database) -> None:
    signed_up = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    logged_in = auth.login(Login("  Ann@EXAMPLE.com", PASSWORD))
    assert logged_in.user_id == signed_up.user_id
    claims = verify(auth, logged_in.access_token)
    assert claims["sid"] != verify(auth, signed_up.access_token)["sid"]
    assert len(database.sessions) == 2
    assert logged_in.refresh_token != signed_up.refresh_token


def _refusal(auth, email: str, password: str) -> Unauthenticated:
    with pytest.raises(InvalidCredentials) as caught:
        auth.login(Login(email, password))
    return caught.value


def test_unknown_email_and_wrong_password_fail_identically(auth, hasher) -> None:
    auth.sign_up(SignUp("ann@example.com", PASSWORD))
    hasher.verified.clear()
    wrong_password = _refusal(auth, "ann@example.com", "not the passphrase")
    unknown_email = _refusal(auth, "bob@example.com", PASSWORD)
    malformed_email = _refusal(auth, "bob", PASSWORD)
    for error in (wrong_password, unknown_email, malformed_email):
        assert (error.code, error.reason, error.message) == (
            "UNAUTHENTICATED",
            "INVALID_CREDENTIALS",
            "invalid email or password",
        )
    # One slow verification each time; the dummy hash stands in for unknown emails.
    assert len(hasher.verified) == 3
    assert hasher.verified[1:] == [hasher.dummy_hash, hasher.dummy_hash]


def test_login_requires_both_fields(auth) -> None:
    with pytest.raises(InvalidArgument) as caught:
        auth.login(Login(" ", ""))
    assert {v.field for v in caught.value.violations} == {"email", "password"}


def test_login_refuses_overlong_passwords_before_hashing(auth, hasher) -> None:
    with pytest.raises(InvalidArgument):
        auth.login(Login("ann@example.com", "x" * 10_000))
    assert hasher.verified == []


def test_login_rehashes_an_outdated_hash(auth, database, hasher) -> None:
    tokens = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    hasher.version = "v2"
    auth.login(Login("ann@example.com", PASSWORD))
    stored = database.users[tokens.user_id].password_hash
    assert stored.startswith("v2$")
    assert hasher.verify(stored, PASSWORD)
    hasher.verified.clear()
    auth.login(Login("ann@example.com", PASSWORD))
    assert database.users[tokens.user_id].password_hash == stored


def test_tokens_survive_a_restart_of_the_key_ring(auth, database, make_key_ring) -> None:
    tokens = auth.sign_up(SignUp("ann@example.com", PASSWORD))
    kid = jwt.get_unverified_header(tokens.access_token)["kid"]
    assert [k.kid for k in make_key_ring(database).published()] == [kid]
