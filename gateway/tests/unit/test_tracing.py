"""The Flask server spans are switched on with tracing and off without it."""

from __future__ import annotations

import pytest
from flask import Flask
from gateway.tracing import instrument_app


def _instrumented(app: Flask) -> bool:
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))


def test_the_app_is_instrumented_when_tracing_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    app = instrument_app(Flask("traced"))
    assert _instrumented(app)


def test_nothing_is_instrumented_when_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = instrument_app(Flask("untraced"))
    assert not _instrumented(app)
