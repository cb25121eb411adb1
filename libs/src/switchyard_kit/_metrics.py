"""Prometheus metrics shared by every process (RED per RPC, cache hits)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_SERVER_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache look-ups by outcome (hit, miss, error).",
    ["cache", "outcome"],
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on `port` in a background thread; 0 disables it."""
    if port:
        start_http_server(port, addr=host)
