from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict
from switchyard_kit import ConfigurationError, ServiceSettings, load_settings, require_real_secret


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"
    default_port: ClassVar[int] = 50099
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore", frozen=True)


def test_defaults_give_a_port_and_a_sqlite_file_per_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("SWITCHYARD_DATA_DIR", str(tmp_path))
    settings = load_settings(ExampleSettings)
    assert settings.port == 50099
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/example.db"
    assert settings.redis_url is None


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "6000")
    monkeypatch.setenv("EXAMPLE_DATABASE_URL", "postgresql://db/example")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings(ExampleSettings)
    assert (settings.port, settings.database_url) == (6000, "postgresql://db/example")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("EXAMPLE_PORT", "eighty"), ("EXAMPLE_PORT", "70000"), ("EXAMPLE_MAX_WORKERS", "0")],
)
def test_a_bad_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(ExampleSettings)


def test_placeholder_secrets_are_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHYARD_ENV", "production")
    settings = load_settings(ExampleSettings)
    with pytest.raises(ConfigurationError, match="EXAMPLE_SECRET"):
        require_real_secret(settings, "EXAMPLE_SECRET", "changeme")
    require_real_secret(settings, "EXAMPLE_SECRET", "f3b1c0a9d8e7")


def test_placeholder_secrets_are_allowed_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHYARD_ENV", raising=False)
    require_real_secret(load_settings(ExampleSettings), "EXAMPLE_SECRET", None)


def test_port_zero_asks_for_any_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "0")
    assert load_settings(ExampleSettings).port == 0
    assert ExampleSettings(port=0).port == 0
