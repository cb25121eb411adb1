"""Where one request's CPU goes: py-spy on every process of a tier under load.

Starts the platform as `make bench` does (private Redis, fresh PostgreSQL
databases seeded by bench/seed.py, every service, relays and workers), logs
in `--tokens` users, warms the route up, then sends `--seconds` of wrk load
(32 connections) to one route while py-spy samples the chosen tiers' processes
(`--tier gateway` = the gunicorn workers; `--tier profile` = that service).
Prints, per tier, the frames holding the most samples: inclusive (the frame
or anything it called) and self (the frame itself), as shares of the tier's
samples. Only the thread holding the GIL is sampled (py-spy --gil): Python
running, not threads waiting in C (gRPC, sockets, locks), which py-spy's
idle filter does not always recognise.

    .venv/bin/python bench/flame.py /v1/profiles/me --tier gateway --tier profile
    .venv/bin/python bench/flame.py /v1/me --tier gateway --seconds 20 --raw /tmp/me.txt

`--raw FILE` also writes py-spy's collapsed stacks (one "frame;frame;... count"
line each) for a flame graph tool. Databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

from switchyard_dev.launcher import Platform

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from stage import staged_platform  # noqa: E402

import bench  # noqa: E402 - after the path is set


def tier_pids(platform_: Platform, tier: str) -> list[int]:
    """The processes of `tier`: a gunicorn master's workers, or the service itself."""
    root = platform_.processes[tier].pid
    table = bench.process_table()
    children = bench.descendants(table, [root]) - {root}
    return sorted(children) if tier == "gateway" else [root, *sorted(children)]


def collapsed_stacks(path: Path) -> collections.Counter[tuple[str, ...]]:
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def top_frames(stacks: collections.Counter[tuple[str, ...]], count: int) -> str:
    """Inclusive and self shares of the busiest frames, as text."""
    total = sum(stacks.values()) or 1
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for stack, samples in stacks.items():
        for frame in set(stack):
            inclusive[frame] += samples
        own[stack[-1]] += samples
    lines = [f"  {total} samples holding the GIL", "  inclusive:"]
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(count)]
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(count)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="the route to load, e.g. /v1/profiles/me")
    parser.add_argument("--tier", action="append", default=[], help="gateway or a service name")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--raw", type=Path, help="also write the collapsed stacks here")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the platform")
    args = parser.parse_args()
    tiers = args.tier or ["gateway"]
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        raise SystemExit("flame: py-spy is missing (make install)")

    wrk = bench.ensure_wrk()
    env = dict(item.split("=", 1) for item in args.env)
    with staged_platform(users=args.users, tokens=args.tokens, env=env) as staged:
        platform_, tokens_file = staged.platform, staged.tokens_file
        gateway_port = staged.ports["gateway"]
        scenario = bench.Scenario("flame", args.path, "gateway", args.path)
        bench.run_wrk(wrk, scenario, gateway_port, 3, tokens_file)

        recorders: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        for tier in tiers:
            for pid in tier_pids(platform_, tier):
                out = staged.workdir / f"{tier}-{pid}.txt"
                argv = [py_spy, "record", "--pid", str(pid), "--duration", str(int(args.seconds))]
                # --gil: only the thread holding the GIL, i.e. running Python; a
                # thread blocked in a C call (a gRPC or socket wait) is not CPU.
                argv += ["--rate", "250", "--format", "raw", "--output", str(out), "--gil"]
                recorders.append((tier, out, subprocess.Popen(argv, stdout=subprocess.DEVNULL)))  # noqa: S603
        time.sleep(0.5)
        meter = bench.CpuMeter({tier: [platform_.processes[tier].pid] for tier in tiers})
        before = meter.snapshot()
        result = bench.run_wrk(wrk, scenario, gateway_port, args.seconds, tokens_file)
        spent = bench.CpuMeter.seconds(before, meter.snapshot())
        for _, _, recorder in recorders:
            recorder.wait(timeout=args.seconds + 60)
        ok = sum(n for status, n in result["statuses"].items() if status.startswith("2"))
        print(f"flame: {args.path}: {result['statuses']} in {result['duration_us'] / 1e6:.1f}s")
        # Sampling slows the sampled processes: read these as rough, A/B with make bench.
        print(
            "flame: CPU ms per 2xx (while sampled): "
            + ", ".join(f"{tier} {spent[tier] * 1000 / max(ok, 1):.2f}" for tier in tiers)
        )
        raw_lines: list[str] = []
        for tier in tiers:
            stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
            for name, out, _ in recorders:
                if name == tier and out.exists():
                    stacks.update(collapsed_stacks(out))
                    raw_lines += out.read_text().splitlines()
            print(f"\n{tier}:\n{top_frames(stacks, args.top)}")
        if args.raw:
            args.raw.write_text("\n".join(raw_lines) + "\n")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
