from __future__ import annotations

import pytest
from auth_service.config import AuthSettings
from switchyard_kit import ConfigurationError, load_settings

REAL_SECRET = "k" * 20 + "-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SWITCHYARD_ENV", "PROFILE_TARGET", "AUTH_SIGNING_KEY_SECRET", "AUTH_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings(AuthSettings)
    assert settings.port == 50051
    assert settings.token_issuer == "switchyard-auth"
    assert settings.token_audience == "switchyard-api"
    assert settings.access_token_ttl_seconds == 900
    assert settings.refresh_token_ttl_seconds == 30 * 86_400
    assert (settings.argon2_memory_cost_kib, settings.argon2_time_cost) == (19_456, 2)
    assert settings.argon2_parallelism == 1
    assert settings.profile_target == "127.0.0.1:50052"
    assert settings.signing_key_secrets == []
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("auth.db")


def test_reads_prefixed_variables_and_profile_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PORT", "6000")
    monkeypatch.setenv("AUTH_TOKEN_ISSUER", "issuer-x")
    monkeypatch.setenv("AUTH_ACCESS_TOKEN_TTL_SECONDS", "300")
    monkeypatch.setenv("PROFILE_TARGET", "dns:///profile:50052")
    settings = load_settings(AuthSettings)
    assert settings.port == 6000
    assert settings.token_issuer == "issuer-x"
    assert settings.access_token_ttl_seconds == 300
    assert settings.profile_target == "dns:///profile:50052"


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ARGON2_TIME_COST", "0")
    with pytest.raises(ConfigurationError, match="AUTH_ARGON2_TIME_COST"):
        load_settings(AuthSettings)


def test_production_requires_the_key_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_ENV", "production")
    with pytest.raises(ConfigurationError, match="AUTH_SIGNING_KEY_SECRET"):
        load_settings(AuthSettings)
    monkeypatch.setenv("AUTH_SIGNING_KEY_SECRET", "changeme")
    with pytest.raises(ConfigurationError, match="AUTH_SIGNING_KEY_SECRET"):
        load_settings(AuthSettings)
    monkeypatch.setenv("AUTH_SIGNING_KEY_SECRET", "too-short-for-a-key")
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_settings(AuthSettings)
    monkeypatch.setenv("AUTH_SIGNING_KEY_SECRET", REAL_SECRET)
    assert load_settings(AuthSettings).signing_key_secrets == [REAL_SECRET]


def test_several_secrets_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SIGNING_KEY_SECRET", f"{REAL_SECRET}new, {REAL_SECRET}old")
    assert load_settings(AuthSettings).signing_key_secrets == [
        f"{REAL_SECRET}new",
        f"{REAL_SECRET}old",
    ]


def test_secret_is_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SIGNING_KEY_SECRET", REAL_SECRET)
    assert REAL_SECRET not in repr(load_settings(AuthSettings))


def test_hashing_pool_defaults_leave_threads_for_cheap_rpcs() -> None:
    settings = load_settings(AuthSettings)
    assert (settings.hashing_workers, settings.hashing_queue) == (2, 4)
    assert settings.hashing_queue_timeout_seconds == 1.0
    assert settings.hashing_workers + settings.hashing_queue < settings.max_workers


def test_a_hashing_pool_that_takes_every_server_thread_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_MAX_WORKERS", "8")
    monkeypatch.setenv("AUTH_HASHING_WORKERS", "4")
    monkeypatch.setenv("AUTH_HASHING_QUEUE", "3")
    with pytest.raises(ConfigurationError, match="AUTH_HASHING_QUEUE"):
        load_settings(AuthSettings)
