"""The Grafana dashboard (ConfigMap switchyard-grafana-dashboard): well-formed
as Grafana loads it (panels with unique ids on a 24-column grid, queries with
refIds on the dashboard's data source variable), every query valid PromQL
(promtool) reading metrics that exist, and a panel for each question the
runbooks ask."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.metric_names import MONITORING, known_metrics, metrics_in

DASHBOARD: dict[str, Any] = json.loads((MONITORING / "grafana-dashboard.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
TARGETS = [(panel, target) for panel in PANELS for target in panel["targets"]]


def _concrete(expr: str) -> str:
    # The dashboard's variables, as Grafana fills them in.
    return expr.replace("$namespace", "switchyard")


def test_the_dashboard_has_what_grafana_needs() -> None:
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        assert key in DASHBOARD
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["w"] > 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_panel_queries_metrics_that_exist(panel: dict[str, Any]) -> None:
    assert panel["datasource"]["uid"] == "${datasource}"
    assert panel["targets"], panel["title"]
    refs = [target["refId"] for target in panel["targets"]]
    assert len(refs) == len(set(refs))
    for target in panel["targets"]:
        used = metrics_in(target["expr"])
        assert used, f"{panel['title']}: no metric in {target['expr']}"
        assert used <= known_metrics(), f"{panel['title']} reads unknown {used - known_metrics()}"


def test_the_runbooks_questions_have_a_panel() -> None:
    used = set().union(*(metrics_in(target["expr"]) for _, target in TARGETS))
    assert {
        # RED per route and per RPC
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        # saturation
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "db_pool_connections_in_use",
        "db_pool_size",
        "gateway_backend_in_flight",
        "gateway_backend_in_flight_limit",
        "gateway_queue_wait_seconds_bucket",
        # breakers and shedding
        "gateway_circuit_breaker_state",
        "gateway_requests_shed_total",
        # stream lag, outbox backlog, dead letters, loops
        "redis_stream_group_lag",
        "outbox_unsent_events",
        "switchyard_outbox_unsent",
        "redis_stream_length",
        "loop_heartbeat_age_seconds",
        # replicas
        "db_replica_lag_seconds",
    } <= used


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is needed (Debian package prometheus)")
        pytest.skip("promtool not installed")
    # Each query as a recording rule: promtool parses and checks it.
    rules = [
        {
            "record": f"dashboard:panel_{panel['id']}_{target['refId']}",
            "expr": _concrete(target["expr"]),
        }
        for panel, target in TARGETS
    ]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
