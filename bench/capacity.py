"""The capacity model of bench/CAPACITY.md, computed from a `make bench` result.

For a traffic mix (requests/s per scenario), the CPU each tier needs is the
sum over scenarios of rate x measured CPU ms per request; pods follow from the
CPU one pod can use (a gRPC service is one Python process: about one core; a
gateway pod runs GATEWAY_WORKERS processes within its CPU limit) and the HPA's
utilisation target.

    .venv/bin/python bench/capacity.py bench/results/<time>.json --total 50000
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

# The flash-sale mix of CAPACITY.md: shares of the total requests/s.
MIX = {
    "3": 0.45,  # GET /v1/profiles/me (cache warm)
    "6": 0.25,  # GET /v1/recommendations
    "7": 0.20,  # GET /v1/me
    "5": 0.10,  # POST /v1/payments
}
# Tier -> CPU one pod can use (cores) at most.
POD_CORES = {
    "gateway": 1.0,  # limit 1 CPU (k8s/base/gateway/deployment.yaml)
    "auth": 1.0,
    "profile": 1.0,
    "payment": 1.0,
    "recommendation": 1.0,
    "workers": 1.0,
}
TIERS = ("gateway", "auth", "profile", "payment", "recommendation", "workers", "postgres", "redis")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("result", type=Path)
    parser.add_argument("--total", type=float, default=50_000.0, help="requests/s")
    parser.add_argument("--utilisation", type=float, default=0.6, help="HPA CPU target")
    args = parser.parse_args()
    scenarios = json.loads(args.result.read_text())["scenarios"]
    cores = dict.fromkeys(TIERS, 0.0)
    for key, share in MIX.items():
        per_request = scenarios[key]["cpu_ms_per_request"]
        for tier in TIERS:
            cores[tier] += args.total * share * per_request[tier] / 1000
    print(f"mix at {args.total:.0f} req/s: " + ", ".join(f"{k} {v:.0%}" for k, v in MIX.items()))
    print(f"| tier | cores | pods at {args.utilisation:.0%} of 1 core |")
    print("| --- | ---: | ---: |")
    for tier in TIERS:
        pods = (
            str(math.ceil(cores[tier] / (POD_CORES[tier] * args.utilisation)))
            if tier in POD_CORES
            else "-"
        )
        print(f"| {tier} | {cores[tier]:.1f} | {pods} |")
    print(f"| total | {sum(cores.values()):.1f} | |")


if __name__ == "__main__":
    main()
