"""Which metrics exist: those the code defines (the kit, the gateway, the
services) and those of the exporters the deployment runs, by name; and the
metric names a PromQL expression reads. The alert rules and the dashboard are
checked against them, so a renamed metric fails a test instead of silencing an
alert or blanking a panel."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "overlays" / "prod" / "monitoring"

# Metrics read from an exporter rather than our code: the exporter, and what of
# it the rules and the dashboard use (names as the exporter documents them).
EXPORTER_METRICS: dict[str, set[str]] = {
    "prometheus (per scrape target)": {"up"},
    "kube-state-metrics": {
        "kube_pod_container_status_restarts_total",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_deployment_status_replicas_available",
        "kube_job_failed",
        "kube_cronjob_status_last_successful_time",
        "kube_pod_container_resource_limits",
    },
    "kubelet/cAdvisor": {
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
    },
    "redis_exporter (exporters.yaml)": {
        "redis_up",
        "redis_stream_group_lag",
        "redis_stream_length",
    },
    "postgres_exporter (exporters.yaml)": {"pg_up"},
}

_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|GaugeMetricFamily|CounterMetricFamily)\(\s*\"([a-z_:][a-z0-9_:]*)\""
)
_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "CounterMetricFamily": ("_total",),
    "Histogram": ("_bucket", "_count", "_sum", "_created"),
    "Summary": ("_count", "_sum", "_created"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
}
_SOURCES = ("libs/src", "gateway/src", "services")


def code_metrics() -> set[str]:
    """Every series name a Counter/Gauge/Histogram defined in our code exposes."""
    names: set[str] = set()
    for folder in _SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            if "/tests/" in str(path):
                continue
            for kind, name in _DEFINITION.findall(path.read_text()):
                base = name.removesuffix("_total") if kind.startswith("Counter") else name
                names |= {base + suffix for suffix in _SUFFIXES[kind]}
    return names


def query_exporter_metrics() -> set[str]:
    """The payment outbox exporter's custom queries: <query>_<column>."""
    names: set[str] = set()
    for doc in yaml.safe_load_all((MONITORING / "exporters.yaml").read_text()):
        if doc and doc["kind"] == "ConfigMap" and "queries.yaml" in doc.get("data", {}):
            for query, spec in yaml.safe_load(doc["data"]["queries.yaml"]).items():
                names |= {f"{query}_{column}" for metric in spec["metrics"] for column in metric}
    return names


def known_metrics() -> set[str]:
    exporters = set().union(*EXPORTER_METRICS.values())
    return code_metrics() | query_exporter_metrics() | exporters


_KEYWORDS = {
    # PromQL functions, aggregations and operators spelled as words.
    *[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ],
    *[
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "histogram_quantile",
        "time",
        "vector",
        "scalar",
        "abs",
    ],
    *[
        "clamp",
        "clamp_min",
        "clamp_max",
        "absent",
        "absent_over_time",
        "changes",
        "resets",
        "round",
        "ceil",
        "floor",
    ],
    *["avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time"],
    *["last_over_time", "label_replace", "label_join", "sort", "sort_desc", "timestamp"],
    *[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
    ],
}


def metrics_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (grafana's $__rate_interval and
    template variables aside)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)
    tokens = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", text))
    return {token for token in tokens - _KEYWORDS if not re.fullmatch(r"\d*[smhdwy]", token)}
