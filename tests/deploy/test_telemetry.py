"""Telemetry in the cluster (prod overlay, k8s/components/telemetry): every
workload of the platform exports traces to the OpenTelemetry Collector of the
namespace, may read SENTRY_DSN from an optional Secret, and its /metrics is
scraped, workers and relays included; the collector forwards to a backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from deploy.conftest import K8S, render
from deploy.test_manifests import (
    COMPONENT,
    config_map_data,
    matches,
    named,
    of_kind,
    pod_labels,
    pod_template,
    policies_for,
)

PART_OF = "app.kubernetes.io/part-of"


def _platform_workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        w
        for w in of_kind(objects, "Deployment", "CronJob")
        if pod_labels(w).get(PART_OF) == "switchyard"
    ]


def test_every_workload_exports_otlp_to_the_collector_service() -> None:
    objects = render("prod")
    collector = named(objects, "Service", "otel-collector")
    ports = {p["port"] for p in collector["spec"]["ports"]}
    workloads = _platform_workloads(objects)
    kinds = {pod_labels(w)[COMPONENT] for w in workloads}
    assert {"gateway", "grpc-service", "worker", "job"} <= kinds
    for workload in workloads:
        container = pod_template(workload)["spec"]["containers"][0]
        endpoint = config_map_data(objects, container).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert endpoint, f"{workload['kind']}/{workload['metadata']['name']}: no OTLP endpoint"
        url = urlsplit(endpoint)
        assert url.hostname == "otel-collector"
        assert url.port in ports
        # The NetworkPolicies let it reach the collector on that port.
        egress = [
            rule
            for policy in policies_for(objects, pod_labels(workload))
            for rule in policy["spec"].get("egress", [])
            if any(
                matches(peer.get("podSelector", {}), {"app.kubernetes.io/name": "otel-collector"})
                and "podSelector" in peer
                for peer in rule.get("to", [])
            )
        ]
        assert any(port["port"] == url.port for rule in egress for port in rule.get("ports", [])), (
            workload["metadata"]["name"]
        )


def test_sentry_dsn_comes_from_an_optional_secret_everywhere() -> None:
    objects = render("prod")
    for workload in _platform_workloads(objects):
        env = {e["name"]: e for e in pod_template(workload)["spec"]["containers"][0]["env"]}
        reference = env["SENTRY_DSN"]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": "sentry", "key": "dsn", "optional": True}


def test_the_collector_receives_otlp_and_exports_to_a_trace_backend() -> None:
    objects = render("prod")
    deployment = named(objects, "Deployment", "otel-collector")
    config_map = named(objects, "ConfigMap", "otel-collector-config")
    config = yaml.safe_load(config_map["data"]["collector-config.yaml"])
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert pipeline["exporters"] == ["otlp"]
    assert "${env:TRACE_BACKEND_ENDPOINT}" in config["exporters"]["otlp"]["endpoint"]
    backend = named(objects, "ConfigMap", "otel-collector-backend")["data"]
    assert backend["TRACE_BACKEND_ENDPOINT"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": "otel-collector-backend"}} in container["envFrom"]
    assert {p["containerPort"] for p in container["ports"]} >= {4317, 4318}


def test_workers_and_relays_are_scraped_on_their_liveness_port() -> None:
    objects = render("prod")
    monitor = named(objects, "PodMonitor", "switchyard-workers")
    workers = [
        w for w in of_kind(objects, "Deployment") if pod_labels(w).get(COMPONENT) == "worker"
    ]
    assert len(workers) >= 4
    for worker in workers:
        assert matches(monitor["spec"]["selector"], pod_labels(worker))
        ports = {p["name"] for p in pod_template(worker)["spec"]["containers"][0]["ports"]}
        assert "liveness" in ports
        # Prometheus (namespace monitoring) may reach that port.
        assert any(
            port["port"] == "liveness"
            for policy in policies_for(objects, pod_labels(worker))
            for rule in policy["spec"].get("ingress", [])
            for port in rule.get("ports", [])
        ), worker["metadata"]["name"]


def test_dev_can_opt_in_to_the_collector(tmp_path: Path) -> None:
    # The dev overlay plus the component, as its commented line offers: renders,
    # and every dev workload then exports to the collector too.
    text = (K8S / "overlays" / "dev" / "kustomization.yaml").read_text()
    assert "# - ../../components/telemetry" in text
    folder = Path(tempfile.mkdtemp(prefix=".dev-telemetry-", dir=K8S))
    try:
        (folder / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources: [../overlays/dev]\ncomponents: [../components/telemetry]\n"
        )
        objects = render_path(folder)
    finally:
        shutil.rmtree(folder)
    named(objects, "Deployment", "otel-collector")
    for workload in _platform_workloads(objects):
        container = pod_template(workload)["spec"]["containers"][0]
        assert config_map_data(objects, container)["OTEL_EXPORTER_OTLP_ENDPOINT"]


def render_path(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is needed to render the overlays (kubectl kustomize)")
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], check=True, capture_output=True, text=True
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
