"""Every Deployment, workers and relays included, is restarted by Kubernetes
when it hangs: a liveness probe, and a startup probe that covers its start."""

from __future__ import annotations

from typing import Any


def _deployments(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "Deployment"]


def _config(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        for o in objects:
            if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name:
                data.update(o.get("data", {}))
    return data


def test_every_deployment_has_liveness_and_startup_probes(objects: list[dict[str, Any]]) -> None:
    deployments = _deployments(objects)
    assert len(deployments) >= 9
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert "livenessProbe" in container, where
            assert "startupProbe" in container, where
            # The startup probe allows at least as long as liveness would.
            startup = container["startupProbe"]
            assert startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 30


def test_workers_and_relays_probe_their_loop_heartbeat(objects: list[dict[str, Any]]) -> None:
    workers = [
        d
        for d in _deployments(objects)
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "worker"
    ]
    assert {d["metadata"]["name"] for d in workers} >= {
        "auth-relay",
        "payment-relay",
        "profile-worker",
        "recommendation-worker",
    }
    for worker in workers:
        (container,) = worker["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        settings = _config(objects, container)
        (port_variable,) = [k for k in settings if k.endswith("_LIVENESS_PORT")]
        for probe in ("startupProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] == "/livez", worker["metadata"]["name"]
            # The port the process serves its heartbeat on (<SERVICE>_LIVENESS_PORT).
            assert ports[get["port"]] == int(settings[port_variable]), worker["metadata"]["name"]
        # A loop is declared stuck by the process after its max age; the probe
        # must not give up before that plus one period.
        max_age = float(settings[port_variable.replace("_PORT", "_MAX_AGE_SECONDS")])
        liveness = container["livenessProbe"]
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= max_age
