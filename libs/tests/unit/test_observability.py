"""The log redaction guard, the telemetry configuration and the scrape-time gauges."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import text
from switchyard_kit import Database, redact_text, watch_outbox_backlog
from switchyard_kit._logging import JsonFormatter
from switchyard_kit._telemetry import exporter_names

COLUMNS = "created_at TIMESTAMP, sent_at TIMESTAMP"
JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"


def _format(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter("test").format(record))


@pytest.mark.parametrize(
    ("text_in", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        (f"token={JWT}", JWT),
        ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111"),
        ("card 4012888888881881", "4012888888881881"),
        ("postgresql://switchyard:hunter2@db:5432/auth", "hunter2"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ],
)
def test_secrets_in_messages_are_masked(text_in: str, secret: str) -> None:
    assert secret not in redact_text(text_in)
    assert secret not in json.dumps(_format("%s", text_in))


def test_card_like_numbers_keep_their_last_four_digits() -> None:
    assert redact_text("paid with 4111-1111-1111-1111") == "paid with [CARD ****1111]"


def test_numbers_that_are_not_cards_are_kept() -> None:
    # Not Luhn-valid, a UUID, a request id: left alone.
    kept = "order 1234567890123 user 123e4567-e89b-12d3-a456-426614174000 id 0123456789abcdef"
    assert redact_text(kept) == kept


def test_fields_named_like_secrets_are_redacted() -> None:
    entry = _format(
        "login",
        password="correct horse",
        refresh_token="abc",
        authorization="Bearer x",
        amount=1200,
        body={"card_number": "4111111111111111", "display_name": "Ada"},
        user_agent="curl",
    )
    assert entry["password"] == "[REDACTED]"
    assert entry["refresh_token"] == "[REDACTED]"
    assert entry["authorization"] == "[REDACTED]"
    assert entry["amount"] == "[REDACTED]"
    assert entry["body"] == {"card_number": "[REDACTED]", "display_name": "Ada"}
    assert entry["user_agent"] == "curl"


def test_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError(f"cannot verify {JWT}")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter("test").format(record)
    assert JWT not in line
    assert "cannot verify" in line


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ("console", "otlp")),
    ],
)
def test_exporters_come_from_the_standard_variables(
    environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert exporter_names(environ) == expected


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_SPAN_AND_EXIT = """
from opentelemetry import trace
from switchyard_kit import setup_telemetry, flush_telemetry
t = setup_telemetry("probe")
with trace.get_tracer("probe").start_as_current_span("work") as span:
    assert span.get_span_context().is_valid
flush_telemetry(2)
print(t.tracing, t.exporters, t.sentry)
"""


def test_no_exporter_configured_means_no_export_and_no_error() -> None:
    result = _run(_SPAN_AND_EXIT, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True () False"
    assert "Traceback" not in result.stderr


def test_otel_sdk_disabled_turns_tracing_off() -> None:
    code = _SPAN_AND_EXIT.replace("assert span.get_span_context().is_valid", "pass")
    result = _run(code, {"OTEL_SDK_DISABLED": "true"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False () False"


def test_a_bad_exporter_name_fails_at_start() -> None:
    result = _run(_SPAN_AND_EXIT, {"OTEL_TRACES_EXPORTER": "zipkin-ish"})
    assert result.returncode != 0
    assert "OTEL_TRACES_EXPORTER" in result.stderr


def test_sentry_receives_errors_when_sentry_dsn_is_set() -> None:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = (
            "import sentry_sdk\n"
            "from switchyard_kit import setup_telemetry, flush_telemetry\n"
            "t = setup_telemetry('probe')\n"
            f"sentry_sdk.capture_message('card 4111 1111 1111 1111 refused {JWT}')\n"
            "flush_telemetry(5)\n"
            "print(t.sentry)\n"
        )
        dsn = f"http://public@127.0.0.1:{server.server_address[1]}/1"
        result = _run(code, {"SENTRY_DSN": dsn})
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert received, "nothing reached the Sentry endpoint"
    body = b"".join(received)
    assert b"4111 1111 1111 1111" not in body
    assert JWT.encode() not in body


def test_pool_and_outbox_gauges_are_scraped(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gauges.db'}")
    with database.engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE outbox (id INTEGER PRIMARY KEY, {COLUMNS})"))
        connection.execute(
            text(
                "INSERT INTO outbox (created_at, sent_at) VALUES "
                "('2020-01-01 00:00:00', NULL), ('2020-01-01 00:00:00', NULL), "
                "('2020-01-01 00:00:00', '2020-01-01 00:00:01')"
            )
        )
    watch_outbox_backlog(database.engine, name="gauges-test")
    exposition = generate_latest(REGISTRY).decode()
    database.dispose()
    assert 'db_pool_size{database="gauges",role="primary"}' in exposition
    assert 'outbox_unsent_events{outbox="gauges-test"} 2.0' in exposition
    assert 'outbox_oldest_unsent_age_seconds{outbox="gauges-test"}' in exposition


def test_outbox_names_must_be_plain_identifiers(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="identifier"):
        watch_outbox_backlog(database.engine, table="outbox; DROP TABLE x")
    database.dispose()
