"""An open-model (constant-rate) HTTP/1.1 load generator for the latency scenarios.

wrk is a closed model: a connection waits for its answer before sending the
next request, so when the server stalls, wrk stops asking and the stall is
hidden (coordinated omission). wrk2 fixes that but is not packaged in Debian.
This generator sends request i at t0 + i / rate whatever happened before, over
a pool of keep-alive connections, and measures each latency from the moment
the request was *due*: time spent waiting for a free connection counts.

    python bench/openload.py --port 8080 --path /v1/profiles/me --rate 500 \
        --duration 10 --tokens tokens.txt

Prints one JSON object: sent, completed, statuses, p50/p99/p99.9/max (ms),
errors, late (requests that could not even be sent on time by this client).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import Counter
from pathlib import Path


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, payload: bytes) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(payload)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run(args: argparse.Namespace) -> dict[str, object]:  # noqa: PLR0915 - one loop
    tokens = (
        [line for line in Path(args.tokens).read_text().splitlines() if line] if args.tokens else []
    )
    body = args.body.encode() if args.body else b""
    token_cycle = itertools.cycle(tokens or [""])
    nonce = uuid.uuid4().hex[:12]

    def build(n: int) -> bytes:
        lines = [f"{args.method} {args.path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}"]
        token = next(token_cycle)
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if args.fresh_keys:
            lines.append(f"Idempotency-Key: open-{nonce}-{n}")
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    total = int(args.rate * args.duration)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    late = 0

    async def worker() -> None:
        nonlocal errors
        connection = Connection(args.port)
        while (job := await queue.get()) is not None:
            n, due = job
            try:
                status = await asyncio.wait_for(connection.send(build(n)), args.timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                errors += 1
                connection.close()
                continue
            except TimeoutError:
                statuses["timeout"] += 1
                connection.close()
                continue
            latencies.append(time.perf_counter() - due)
            statuses[str(status)] += 1
        connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(args.connections)]
    start = time.perf_counter() + 0.05
    for n in range(total):
        due = start + n / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.01:
            late += 1
        queue.put_nowait((n, due))
    for _ in workers:
        queue.put_nowait(None)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rate": args.rate,
        "sent": total,
        "completed": len(latencies),
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "statuses": dict(statuses),
        "errors": errors,
        "late": late,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "p999_ms": round(percentile(latencies, 0.999) * 1000, 2),
        "max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--tokens", default="")
    parser.add_argument("--fresh-keys", action="store_true")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
