"""The alert rules: each reads metrics that exist (in our code or a named
exporter), has a runbook in the repository with the four sections an on-call
needs, and has a firing and a silent `promtool test rules` case (make k8s-check
runs them)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from switchyard_dev.observe import rule_groups

from deploy.metric_names import MONITORING, ROOT, known_metrics, metrics_in

RULES = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
ALERTS: dict[str, dict[str, Any]] = {
    rule["alert"]: rule for group in RULES["spec"]["groups"] for rule in group["rules"]
}
TESTS = [
    test
    for path in sorted((MONITORING / "tests").glob("*.yaml"))
    for test in yaml.safe_load(path.read_text())["tests"]
]
SECTIONS = (
    "## What it means",
    "## How to confirm",
    "## How to mitigate",
    "## How to verify recovery",
)


def test_the_failure_table_is_covered() -> None:
    # The cases of issue 17 and the data-tier alerts, by the alert that covers each.
    assert {
        "SwitchyardDeadLettersGrowing",
        "SwitchyardAuthOutboxBacklog",
        "SwitchyardCircuitBreakerOpen",
        "SwitchyardGatewaySheddingRequests",
        "SwitchyardDbPoolSaturated",
        "SwitchyardHpaAtMaxReplicas",
        "SwitchyardRedisUnreachable",
        "SwitchyardPostgresUnreachable",
        "SwitchyardPgBouncerUnavailable",
        "SwitchyardLoopStuck",
        "SwitchyardTargetDown",
        "SwitchyardReplicaNotUsable",
        "SwitchyardReplicaLagHigh",
        "SwitchyardScheduledJobFailed",
        "SwitchyardLedgerReconcileFailed",
    } <= set(ALERTS)


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_rule_reads_metrics_that_exist(alert: str) -> None:
    used = metrics_in(ALERTS[alert]["expr"])
    assert used, f"{alert}: no metric found in its expression"
    assert used <= known_metrics(), f"{alert} reads unknown metrics {used - known_metrics()}"


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_rule_has_what_an_on_call_needs(alert: str) -> None:
    rule = ALERTS[alert]
    assert rule["labels"]["severity"] in {"page", "warn"}
    annotations = rule["annotations"]
    assert annotations["summary"]
    assert annotations["description"]
    runbook = ROOT / annotations["runbook_url"]
    assert runbook.is_file(), f"{alert}: no runbook at {annotations['runbook_url']}"
    text = runbook.read_text()
    assert text.startswith(f"# {alert}\n")
    for section in SECTIONS:
        assert section in text, f"{runbook.name} lacks {section!r}"


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_rule_has_a_firing_and_a_silent_promtool_case(alert: str) -> None:
    cases = [
        case for test in TESTS for case in test["alert_rule_test"] if case["alertname"] == alert
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{alert}: no case where it fires"
    assert any(not case.get("exp_alerts") for case in cases), f"{alert}: no case where it is silent"


def test_every_runbook_belongs_to_a_rule() -> None:
    runbooks = {path.stem for path in (ROOT / "k8s" / "runbooks").glob("Switchyard*.md")}
    assert runbooks == set(ALERTS)


def test_metric_names_are_read_from_expressions() -> None:
    # The check above is only as good as this parser.
    assert metrics_in(
        "sum by (le, route) "
        '(rate(http_request_duration_seconds_bucket{namespace="x", le="+Inf"}[5m]))'
    ) == {"http_request_duration_seconds_bucket"}
    assert metrics_in('a_total > b_seconds or time() - c{d="e"} > 25 * 3600') == {
        "a_total",
        "b_seconds",
        "c",
    }
    assert "switchyard_outbox_unsent" in known_metrics()
    assert "gateway_requests_shed_total" in known_metrics()
    assert "loop_heartbeat_age_seconds" in known_metrics()
    assert "no_such_metric" not in known_metrics()


def test_the_local_prometheus_loads_the_cluster_rules_and_overrides_only_what_it_names() -> None:
    # make observe and the live alert test (tests/faults/test_alerts_fire.py)
    # read the groups from the PrometheusRule: one source.
    assert rule_groups() == RULES["spec"]["groups"]
    changed = rule_groups({"SwitchyardTargetDown": "5s"})
    originals = {
        rule["alert"]: rule for group in RULES["spec"]["groups"] for rule in group["rules"]
    }
    for group in changed:
        for rule in group["rules"]:
            if rule["alert"] == "SwitchyardTargetDown":
                assert rule["for"] == "5s"
                assert {**rule, "for": originals[rule["alert"]]["for"]} == originals[rule["alert"]]
            else:
                assert rule == originals[rule["alert"]]
    with pytest.raises(ValueError, match="no such alert"):
        rule_groups({"SwitchyardNoSuchAlert": "1s"})
