"""Free loopback ports for the servers a test or a bench starts.

Binding port 0 to find a free port takes it from the kernel's ephemeral
range, the range every other socket bound to port 0 is given as well: an
in-process gRPC server of a test running in parallel, an outgoing connection.
Between the pick and the child process binding the port, one of those can take
it, and the child's health check then talks to a stranger (a gRPC server
answering an HTTP probe with HTTP/2 frames: "platform did not start" with a
binary status line). So ports are picked below the ephemeral range, which the
kernel never hands out, each one checked free by binding it; each
pytest-xdist worker picks in a band of its own, so two workers never pick the
same port, and within a process the picks walk the band, so a port is not
handed out twice while the first taker has yet to bind it.

Example::

    gateway_port = free_port()
    ports = free_ports(["auth", "profile", "gateway"])   # {"auth": 23117, ...}
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

# Below it: ports of well-known services a machine may run (PostgreSQL 5432,
# Redis 6379, RabbitMQ 5672, development servers on 8000-9999).
LOWEST_PORT = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def band() -> range:
    """The ports this process picks from: below the ephemeral range, this
    pytest-xdist worker's share of it (the whole of it outside xdist)."""
    high = max(_ephemeral_low(), LOWEST_PORT + 1000)
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % workers if worker.isdigit() else 0
    width = (high - LOWEST_PORT) // workers
    start = LOWEST_PORT + index * width
    return range(start, start + width)


def _walk(ports: range) -> Iterator[int]:
    # From a random place (two runs of one worker overlap less), round and round.
    offset = random.randrange(len(ports))  # noqa: S311 - not for security
    return itertools.cycle([*ports[offset:], *ports[:offset]])


_lock = threading.Lock()
_cursor: Iterator[int] | None = None


def free_ports(names: Sequence[str]) -> dict[str, int]:
    """A free loopback port per name, all different."""
    global _cursor  # noqa: PLW0603 - one walk per process
    ports = band()
    held: list[socket.socket] = []
    try:
        with _lock:
            if _cursor is None:
                _cursor = _walk(ports)
            for _ in range(len(ports)):
                if len(held) == len(names):
                    break
                probe = socket.socket()
                try:
                    probe.bind(("127.0.0.1", next(_cursor)))
                except OSError:
                    probe.close()
                else:
                    held.append(probe)
        if len(held) < len(names):
            raise OSError(f"fewer than {len(names)} free ports in {ports}")
        return {name: probe.getsockname()[1] for name, probe in zip(names, held, strict=True)}
    finally:
        for probe in held:
            probe.close()


def free_port() -> int:
    """One free loopback port (see `free_ports`)."""
    return free_ports(["port"])["port"]
