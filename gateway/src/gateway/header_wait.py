"""Slow clients cannot hold worker threads: a connection gets a thread only
once its request line and headers are complete.

gunicorn's gthread worker hands a connection to a thread as soon as it is
accepted (or, kept alive, as soon as it is readable again); the thread then
reads the headers with a blocking socket and no deadline. 48 connections
that send `GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: ` and stop took all
2 x 8 threads, and /healthz timed out for everyone.

`HeaderWaitWorker` keeps such a connection in the worker's event loop
instead: its bytes are read there without blocking (one `recv` per readable
event) into a buffer, until the blank line that ends the headers arrives.
Only then is the connection queued for a thread, with the bytes given back
to gunicorn's own parser (`unreader.unread`), which parses them as if it had
read them itself. A connection that has not completed its headers
GATEWAY_HEADER_TIMEOUT_SECONDS after it was accepted (or, kept alive,
after its next request began), or whose headers exceed
GATEWAY_MAX_HEADER_BYTES, is closed without ever taking a thread. A waiting
connection costs a file descriptor and its buffer; gunicorn's
worker_connections (1000) still bounds how many a worker holds.

Every path that queues a connection for a thread goes through
`enqueue_req` (new, kept alive, deferred, bytes read ahead by a body
drain), so all of them wait here first. Request bodies are not covered:
the app reads them on its thread, bounded by GATEWAY_MAX_BODY_BYTES.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]  # no stubs

from gateway import metrics
from gateway.settings import load_gateway_settings

HEADERS_END = b"\r\n\r\n"
RECV_BYTES = 8192


@dataclass
class _Waiting:
    """A connection whose headers are still arriving."""

    conn: Any  # gunicorn's TConn
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class HeaderWaitWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gthread, but a connection reaches a thread only with its headers complete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = load_gateway_settings()
        self.header_timeout = settings.header_timeout_seconds
        self.max_header_bytes = settings.max_header_bytes
        # Insertion order is deadline order: every deadline is now + the same timeout.
        self._waiting: dict[int, _Waiting] = {}

    def enqueue_req(self, conn: Any) -> None:
        """Queue `conn` for a thread once its headers are complete."""
        if getattr(conn, "headers_complete", False):
            conn.headers_complete = False
            super().enqueue_req(conn)
            return
        # A body drain may have read ahead into the next request: start from those bytes.
        read_ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        waiting = _Waiting(conn, time.monotonic() + self.header_timeout, bytearray(read_ahead))
        if self._complete(waiting):
            return
        # A kept-alive connection comes here because the poller saw it readable,
        # and a new one has usually sent its request already: read what is there
        # now, and wait in the poller only when the headers are not all in (a
        # second registration and loop turn per request, otherwise).
        headers_in = self._receive(waiting)
        if headers_in is None:
            self._waiting[id(conn)] = waiting
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self._on_readable, waiting)
            )
        elif headers_in:
            self._complete(waiting)
        else:
            self._close(conn)

    def _on_readable(self, waiting: _Waiting, _sock: Any) -> None:
        headers_in = self._receive(waiting)
        if headers_in is None:
            return
        self._forget(waiting)
        if headers_in:
            self._complete(waiting)
        else:
            self._close(waiting.conn)

    def _receive(self, waiting: _Waiting) -> bool | None:
        """Read what the socket holds, without blocking (whatever its mode):
        True once the headers are in (or too large), False when the connection
        is gone, None while they are still arriving."""
        try:
            chunk = waiting.conn.sock.recv(RECV_BYTES, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            if error.errno not in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
                self.log.debug("reading request headers failed: %s", error)
            return False
        if not chunk:  # the client closed the connection
            return False
        start = max(0, len(waiting.data) - len(HEADERS_END) + 1)
        waiting.data += chunk
        if HEADERS_END in waiting.data[start:] or len(waiting.data) > self.max_header_bytes:
            return True
        return None

    def _complete(self, waiting: _Waiting) -> bool:
        """Hand `waiting` to a thread if its headers are in (True), or close it if
        they are too large (True); False while they are still arriving."""
        end = waiting.data.find(HEADERS_END)
        if end < 0 and len(waiting.data) <= self.max_header_bytes:
            return False
        if end < 0 or end + len(HEADERS_END) > self.max_header_bytes:
            metrics.SLOW_CLIENTS_CLOSED.labels("headers_too_large").inc()
            self._close(waiting.conn)
            return True
        conn = waiting.conn
        conn.pending_bytes = bytes(waiting.data)
        conn.headers_complete = True
        # The thread must not wait for data again (gthread's wait_for_data).
        conn.data_ready = True
        self.enqueue_req(conn)
        return True

    def handle(self, conn: Any) -> Any:
        """On the thread: give the buffered bytes back to gunicorn's parser, then serve."""
        pending = getattr(conn, "pending_bytes", b"")
        conn.pending_bytes = b""
        if pending:
            # (gthread's handle puts the socket back in blocking mode itself.)
            conn.init()
            conn.parser.unreader.unread(pending)
        return super().handle(conn)

    def murder_pending(self) -> None:
        """gthread's own expiry pass (every loop turn, at least once a second),
        plus closing connections whose headers are late."""
        super().murder_pending()
        now = time.monotonic()
        for key, waiting in list(self._waiting.items()):
            if waiting.deadline > now:
                break
            del self._waiting[key]
            self._unregister(waiting.conn)
            metrics.SLOW_CLIENTS_CLOSED.labels("header_timeout").inc()
            self._close(waiting.conn)

    def _cap_keepalive(self, deadline: float) -> None:
        """On shutdown gthread caps kept-alive connections at a short linger;
        connections still sending headers get the same cap, so a stopping
        worker does not wait out their full header deadline. (A gthread
        without this hook leaves them to their own deadline.)"""
        super()._cap_keepalive(deadline)
        for waiting in self._waiting.values():
            # Capping every deadline at one value keeps them in order.
            waiting.deadline = min(waiting.deadline, deadline)

    def _forget(self, waiting: _Waiting) -> None:
        self._waiting.pop(id(waiting.conn), None)
        self._unregister(waiting.conn)

    def _unregister(self, conn: Any) -> None:
        # Never registered, or already closed: nothing to undo.
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()


__all__ = ["HeaderWaitWorker"]
