"""Chunked request bodies over GATEWAY_MAX_BODY_BYTES answer 413.

A body with a Content-Length over the limit is refused by Flask
(MAX_CONTENT_LENGTH) before it is read. A chunked body has no length up
front, and werkzeug reads it through a stream that silently stops at the
limit: the app used to get the first 64 KiB of a longer body and process
them as if they were all of it. This middleware reads a chunked body itself,
at most limit + 1 bytes (never more, however much the client sends): over
the limit it answers 413 problem+json and closes the connection (the rest of
the body is never read); within it, the app gets the body with its length
known, as if it had been sent with a Content-Length.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Request

from gateway.calls import request_id_from
from gateway.problems import ApiError, problem_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

TOO_LARGE_DETAIL = "the request body is too large"


class ChunkedBodyLimit:
    """WSGI middleware: a chunked body over `max_bytes` is a 413, not a truncated body.

    Example::

        app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, max_bytes=65536)
    """

    def __init__(self, app: WSGIApplication, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self.app(environ, start_response)
        body = self._read_at_most(environ["wsgi.input"], self.max_bytes + 1)
        if len(body) > self.max_bytes:
            return self._too_large(environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        return self.app(environ, start_response)

    @staticmethod
    def _read_at_most(stream: Any, limit: int) -> bytes:
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = stream.read(min(left, 64 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _too_large(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = request_id_from(Request(environ))
        response = problem_response(ApiError(413, TOO_LARGE_DETAIL), request_id)
        response.headers["X-Request-Id"] = request_id
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # The rest of the body is still on the connection: not reusable.
        response.headers["Connection"] = "close"
        return response(environ, start_response)


__all__ = ["ChunkedBodyLimit"]
