"""Chunked bodies over the limit: a 413 that reaches the client."""

from __future__ import annotations

import io
import json
from typing import Any

from gateway.body_limit import DRAIN_BYTES, ChunkedBodyLimit

LIMIT = 1024


def _never_called(environ: Any, start_response: Any) -> list[bytes]:
    raise AssertionError("an over-limit body must not reach the app")


def _call(body: bytes) -> tuple[str, bytes, io.BytesIO]:
    stream = io.BytesIO(body)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/auth/signup",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
    }
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    answer = b"".join(ChunkedBodyLimit(_never_called, LIMIT)(environ, start_response))
    return statuses[0], answer, stream


def test_an_over_limit_body_is_413_problem_json() -> None:
    status, answer, _ = _call(b"x" * (LIMIT + 1))
    assert status.startswith("413")
    assert json.loads(answer)["status"] == 413


def test_the_rest_of_an_over_limit_body_is_read_before_the_413() -> None:
    # Unread bytes make the close a TCP reset, and the client loses the 413.
    body = b"x" * (LIMIT * 100)
    status, _, stream = _call(body)
    assert status.startswith("413")
    assert stream.tell() == len(body)


def test_draining_stops_at_its_budget() -> None:
    body = b"x" * (LIMIT + 1 + DRAIN_BYTES + 10 * LIMIT)
    status, _, stream = _call(body)
    assert status.startswith("413")
    assert stream.tell() == LIMIT + 1 + DRAIN_BYTES
