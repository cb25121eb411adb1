"""A/B of the gateway's code: two gateways, two commits, one run, same backends.

Starts the platform on a small seeded data set (bench/stage.py) and two more
gateways beside its own: gateway A runs the gateway and kit code of `--a`
(a git ref), gateway B that of `--b` (default: the working tree), both
against the same services, Redis and databases. Then, round after round, it
loads each gateway in turn with wrk (32 connections, 2 threads) on the same
route and reads the CPU seconds that gateway's processes spent, so machine
drift falls on both alike. Prints requests/s and gateway CPU ms per 2xx for
each round, and B/A ratios of their medians.

    .venv/bin/python bench/ab.py /v1/profiles/me --a HEAD~3
    .venv/bin/python bench/ab.py /v1/me --a 92a1322 --b HEAD --rounds 6
    .venv/bin/python bench/ab.py /v1/profiles/me --a HEAD --connections 512 \
        --b-env GATEWAY_MAX_QUEUE_WAIT_MS=250     # one setting, same code

Each round also prints the 2xx answers' p50 / p99 (wrk's "accepted"
latency: what the requests that were not shed waited) and the non-2xx.

Only `gateway/src` and `libs/src` (the kit) are taken from each ref; the
generated protobuf code and every installed package are this checkout's.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from switchyard_dev.launcher import Component

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from stage import staged_platform  # noqa: E402

import bench  # noqa: E402 - after the path is set

CODE = ("gateway/src", "libs/src")


def export(ref: str | None, into: Path) -> Path:
    """`ref`'s gateway and kit code under `into` (None: the working tree's)."""
    if ref is None:
        return ROOT
    archive = subprocess.run(  # noqa: S603 - git on our own repository
        ["git", "archive", "--format=tar", ref, *CODE],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def gateway_of(name: str, code: Path, port: int, env: dict[str, str]) -> Component:
    """A gateway running the gateway and kit code under `code`."""
    path = [str(code / folder) for folder in CODE]
    pythonpath = os.pathsep.join([*path, env.get("PYTHONPATH", "")])
    return bench.gateway_component(name, port, {**env, "PYTHONPATH": pythonpath})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="the route to load, e.g. /v1/profiles/me")
    parser.add_argument("--a", required=True, help="git ref of gateway A")
    parser.add_argument("--b", help="git ref of gateway B (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--b-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of gateway B only (repeatable)",
    )
    args = parser.parse_args()
    b_env = dict(pair.split("=", 1) for pair in args.b_env)
    wrk = bench.ensure_wrk()
    ports = {"A": bench.free_port(), "B": bench.free_port()}

    def gateways(env: dict[str, str]) -> list[Component]:
        code_a = export(args.a, Path(env["SWITCHYARD_DATA_DIR"]).parent / "code-a")
        code_b = export(args.b, Path(env["SWITCHYARD_DATA_DIR"]).parent / "code-b")
        return [
            gateway_of("A", code_a, ports["A"], env),
            gateway_of("B", code_b, ports["B"], {**env, **b_env}),
        ]

    with staged_platform(extra=gateways) as staged:
        scenario = bench.Scenario(
            "ab", args.path, "ab", args.path, connections=args.connections, time_accepted=True
        )
        meters = {
            name: bench.CpuMeter({name: [staged.platform.processes[name].pid]}) for name in ports
        }
        rows: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
        for port in ports.values():
            bench.run_wrk(wrk, scenario, port, 2, staged.tokens_file)
        for round_ in range(1, args.rounds + 1):
            # Alternate the order, so neither always runs right after the other.
            order = ("A", "B") if round_ % 2 else ("B", "A")
            for name in order:
                time.sleep(0.5)
                before = meters[name].snapshot()
                result = bench.run_wrk(wrk, scenario, ports[name], args.seconds, staged.tokens_file)
                cpu = bench.CpuMeter.seconds(before, meters[name].snapshot())[name]
                ok = sum(n for s, n in result["statuses"].items() if s.startswith("2"))
                rps = ok / (result["duration_us"] / 1e6)
                ms = cpu * 1000 / max(ok, 1)
                accepted = result["accepted"]
                p99 = accepted["p99_us"] / 1000
                rows[name].append((rps, ms, p99))
                others = {s: n for s, n in result["statuses"].items() if not s.startswith("2")}
                print(
                    f"ab: round {round_} {name}: {rps:7.0f} req/s, gateway CPU {ms:.3f} ms per 2xx,"
                    f" 2xx p50 / p99 {accepted['p50_us'] / 1000:.1f} / {p99:.1f} ms"
                    + (f", non-2xx {others}" if others else ""),
                    flush=True,
                )
        median = {
            name: tuple(statistics.median(column) for column in zip(*row, strict=True))
            for name, row in rows.items()
        }
        print(
            f"\nab: {args.path}, A = {args.a}, B = {args.b or 'working tree'}, "
            f"{args.rounds} rounds x {args.seconds:.0f} s, {args.connections} connections"
            + (f", B with {b_env}" if b_env else "")
            + "\n"
            f"ab: A {median['A'][0]:.0f} req/s, {median['A'][1]:.3f} ms CPU per 2xx,"
            f" 2xx p99 {median['A'][2]:.1f} ms\n"
            f"ab: B {median['B'][0]:.0f} req/s, {median['B'][1]:.3f} ms CPU per 2xx,"
            f" 2xx p99 {median['B'][2]:.1f} ms\n"
            f"ab: B/A req/s {median['B'][0] / median['A'][0]:.3f}x, "
            f"CPU per 2xx {median['B'][1] / median['A'][1]:.3f}x, "
            f"2xx p99 {median['B'][2] / median['A'][2]:.3f}x"
        )
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
