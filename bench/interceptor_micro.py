"""Micro-benchmark of the kit's server interceptor: a git ref's beside this tree's.

    .venv/bin/python bench/interceptor_micro.py --a bee7c47~1 [--rounds 7] [--calls 2000]

Two in-process gRPC servers with one trivial unary method (health's Check,
registered as an ordinary service so the interceptor wraps it), one behind
`--a`'s `switchyard_kit._interceptor.ServiceInterceptor`, one behind this
tree's; a client calls each `--calls` times in turn, round after round, and
each reports its best round's mean time per call (the least disturbed by
the other sessions sharing the machine). Client, server and interceptor share
one process and the calls are sequential, so the difference between the two
is the interceptor's own cost per call.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchyard_kit._interceptor import ServiceInterceptor

ROOT = Path(__file__).resolve().parent.parent
MODULE = "libs/src/switchyard_kit/_interceptor.py"


def interceptor_at(ref: str) -> type[ServiceInterceptor]:
    """`ref`'s ServiceInterceptor, loaded as a module of the kit package."""
    source = subprocess.run(  # noqa: S603 - git on our own repository
        ["git", "show", f"{ref}:{MODULE}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("switchyard_kit._interceptor_ref")
    module.__package__ = "switchyard_kit"
    exec(compile(source, f"{ref}:{MODULE}", "exec"), module.__dict__)  # noqa: S102 - our own code
    interceptor: type[ServiceInterceptor] = module.ServiceInterceptor
    return interceptor


class Checks(health_pb2_grpc.HealthServicer):
    def Check(  # noqa: N802 - the gRPC method's name
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def served(interceptor: ServiceInterceptor) -> tuple[grpc.Server, grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[interceptor])
    # Not under /grpc.health...: the interceptor passes those through untouched.
    handler = grpc.method_handlers_generic_handler(
        "bench.Checks",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                Checks().Check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="git ref of interceptor A")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    setups = {
        "A": served(interceptor_at(args.a)("bench.Checks")),
        "B": served(ServiceInterceptor("bench.Checks")),
    }
    calls = {
        name: channel.unary_unary(
            "/bench.Checks/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        for name, (_server, channel) in setups.items()
    }
    request = health_pb2.HealthCheckRequest()
    metadata = (("x-request-id", "bench"), ("x-switchyard-user-id", "bench-user"))
    best = {name: float("inf") for name in calls}
    for call in calls.values():
        for _ in range(200):
            call(request, metadata=metadata)
    for _ in range(args.rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(args.calls):
                call(request, metadata=metadata)
            best[name] = min(best[name], (time.perf_counter() - started) / args.calls)
    for server, channel in setups.values():
        channel.close()
        server.stop(0)
    print(f"interceptor_micro: A = {args.a}: {best['A'] * 1e6:.1f} us per call")
    print(f"interceptor_micro: B = this tree: {best['B'] * 1e6:.1f} us per call")
    print(f"interceptor_micro: B/A {best['B'] / best['A']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
