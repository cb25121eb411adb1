"""Settings from the environment."""

import pytest
from profile_service.config import ProfileSettings, load_profile_settings
from switchyard_kit import ConfigurationError


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("PROFILE_PORT", "PROFILE_DATABASE_URL", "PROFILE_CACHE_TTL_SECONDS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path))
    settings = load_profile_settings()
    assert settings.port == 50052
    assert settings.cache_ttl_seconds == 60
    assert settings.redis_url is None
    assert settings.database_url == f"sqlite:///{tmp_path}/profile.db"


def test_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFILE_PORT", "6000")
    monkeypatch.setenv("PROFILE_CACHE_TTL_SECONDS", "5")
    monkeypatch.setenv("PROFILE_DATABASE_URL", "postgresql+psycopg2://db/profile")
    monkeypatch.setenv("PROFILE_DATABASE_READ_URL", "postgresql+psycopg2://replica/profile")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    settings = load_profile_settings()
    assert isinstance(settings, ProfileSettings)
    assert settings.port == 6000
    assert settings.cache_ttl_seconds == 5
    assert settings.database_read_url == "postgresql+psycopg2://replica/profile"
    assert settings.redis_url == "redis://cache:6379/0"


@pytest.mark.parametrize("ttl", ["0", "-1", "soon"])
def test_bad_cache_ttl_names_the_variable(monkeypatch: pytest.MonkeyPatch, ttl: str) -> None:
    monkeypatch.setenv("PROFILE_CACHE_TTL_SECONDS", ttl)
    with pytest.raises(ConfigurationError, match="PROFILE_CACHE_TTL_SECONDS"):
        load_profile_settings()
