"""Properties every workload of every overlay must have (k8s/, skaffold.yaml).

Run by `make test` and `make k8s-check`. The settings classes of the packages
are the source of the environment each container must receive.
"""

from __future__ import annotations

import base64
import importlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from switchyard.services import load_services

from deploy.conftest import K8S, ROOT, dockerfile_text

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob")
APP_COMPONENTS = ("grpc-service", "gateway", "worker", "job")
# Pods that keep running (not the scheduled jobs' run-to-completion pods).
LONG_RUNNING = ("grpc-service", "gateway", "worker")
SCALED_COMPONENTS = ("grpc-service", "gateway")
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
SERVICES = {service.name for service in load_services()}


def of_kind(objects: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in kinds]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert found, f"no {kind}/{name}"
    return found[0]


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a Deployment, a StatefulSet or a CronJob."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"])


def component(workload: dict[str, Any]) -> str:
    return str(pod_template(workload)["metadata"]["labels"].get(COMPONENT, ""))


def app_workloads(objects: list[dict[str, Any]], *components: str) -> list[dict[str, Any]]:
    wanted = components or APP_COMPONENTS
    return [w for w in of_kind(objects, *WORKLOAD_KINDS) if component(w) in wanted]


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_template(workload)["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def config_map_data(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data.update(named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    return data


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return dict(pod_template(workload)["metadata"]["labels"])


def test_every_overlay_renders_app_workloads(objects: list[dict[str, Any]]) -> None:
    names = {w["metadata"]["name"] for w in app_workloads(objects)}
    assert {"gateway", "auth", "profile", "payment", "payment-relay"} <= names


def test_namespaced_objects_live_in_the_restricted_namespace(objects: list[dict[str, Any]]) -> None:
    namespace = named(objects, "Namespace", "switchyard")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "switchyard", obj["metadata"]["name"]


def test_every_container_has_requests_and_limits(objects: list[dict[str, Any]]) -> None:
    for workload in of_kind(objects, *WORKLOAD_KINDS):
        for container in containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(bound, {}), (
                        f"{workload['metadata']['name']}/{container['name']}: no {bound}.{resource}"
                    )


def test_every_pod_meets_pod_security_restricted(objects: list[dict[str, Any]]) -> None:
    for workload in of_kind(objects, *WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        spec = pod_template(workload)["spec"]
        pod = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        assert not spec.get("hostNetwork")
        assert not spec.get("hostPID")
        assert not spec.get("hostIPC")
        for container in containers(workload):
            context = container.get("securityContext", {})
            where = f"{name}/{container['name']}"
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            uid = context.get("runAsUser", pod.get("runAsUser"))
            assert isinstance(uid, int), where
            assert uid >= 10000, where
            seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            assert not context.get("privileged"), where


def test_every_workload_has_its_own_service_account_without_token(
    objects: list[dict[str, Any]],
) -> None:
    for workload in app_workloads(objects):
        account = pod_template(workload)["spec"]["serviceAccountName"]
        # A service's CronJobs share one account (and one NetworkPolicy): <service>-job.
        assert account == pod_labels(workload)[NAME]
        if workload["kind"] != "CronJob":
            assert account == workload["metadata"]["name"]
        assert named(objects, "ServiceAccount", account)["automountServiceAccountToken"] is False
    for workload in of_kind(objects, *WORKLOAD_KINDS):
        account = pod_template(workload)["spec"].get("serviceAccountName")
        assert account, workload["metadata"]["name"]
        assert named(objects, "ServiceAccount", account)["automountServiceAccountToken"] is False


def test_app_containers_write_only_to_a_tmp_emptydir(objects: list[dict[str, Any]]) -> None:
    for workload in app_workloads(objects):
        volumes = {v["name"]: v for v in pod_template(workload)["spec"].get("volumes", [])}
        for container in containers(workload):
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            tmp = "/tmp"  # noqa: S108 - the mount path under test, not a file we create
            assert tmp in mounts, f"{workload['metadata']['name']}/{container['name']}"
            assert "emptyDir" in volumes[mounts[tmp]]


def grpc_port(container: dict[str, Any]) -> int:
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc"))


def test_grpc_services_use_native_grpc_probes(objects: list[dict[str, Any]]) -> None:
    for workload in app_workloads(objects, "grpc-service"):
        container = pod_template(workload)["spec"]["containers"][0]
        port = grpc_port(container)
        assert container["readinessProbe"]["grpc"] == {"port": port, "service": ""}
        assert container["livenessProbe"]["grpc"] == {"port": port, "service": "liveness"}
        assert container["startupProbe"]["grpc"]["service"] == "liveness"


def test_gateway_uses_http_probes(objects: list[dict[str, Any]]) -> None:
    container = named(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_termination_grace_outlasts_the_drain(objects: list[dict[str, Any]]) -> None:
    for workload in app_workloads(objects, "grpc-service", "worker"):
        spec = pod_template(workload)["spec"]
        container = spec["containers"][0]
        data = config_map_data(objects, container)
        prefix = container["image"].split("/")[-1].split(":")[0].split("@")[0].upper()
        drain = float(data[f"{prefix}_SHUTDOWN_DELAY_SECONDS"]) + float(
            data[f"{prefix}_GRACE_SECONDS"]
        )
        assert spec["terminationGracePeriodSeconds"] > drain, workload["metadata"]["name"]
    gateway = named(objects, "Deployment", "gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    data = config_map_data(objects, container)
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = pre_stop + int(data["GATEWAY_GRACEFUL_TIMEOUT_SECONDS"])
    assert gateway["terminationGracePeriodSeconds"] > drain


def test_app_workloads_spread_over_zones_and_nodes(objects: list[dict[str, Any]]) -> None:
    for workload in app_workloads(objects, *LONG_RUNNING):
        constraints = pod_template(workload)["spec"]["topologySpreadConstraints"]
        keys = {c["topologyKey"] for c in constraints}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in constraints:
            assert matches(constraint["labelSelector"], pod_labels(workload))


def test_hpa_for_gateway_and_every_grpc_service(objects: list[dict[str, Any]]) -> None:
    targets = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in of_kind(objects, "HorizontalPodAutoscaler")
        if h["apiVersion"] == "autoscaling/v2" and h["spec"]["minReplicas"] >= 2
    }
    for workload in app_workloads(objects, *SCALED_COMPONENTS):
        assert workload["metadata"]["name"] in targets


def test_pdb_for_every_app_workload(objects: list[dict[str, Any]]) -> None:
    budgets = of_kind(objects, "PodDisruptionBudget")
    # A job's run evicted by a drain is run again by its Job (backoffLimit).
    for workload in app_workloads(objects, *LONG_RUNNING):
        assert any(matches(b["spec"]["selector"], pod_labels(workload)) for b in budgets), workload[
            "metadata"
        ]["name"]


def test_grpc_services_are_headless_and_clients_use_dns_targets(
    objects: list[dict[str, Any]],
) -> None:
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    for workload in app_workloads(objects, "grpc-service"):
        name = workload["metadata"]["name"]
        assert services[name]["spec"]["clusterIP"] == "None", name
        data = config_map_data(objects, pod_template(workload)["spec"]["containers"][0])
        age = float(data[f"{name.upper()}_MAX_CONNECTION_AGE_SECONDS"])
        assert 0 < age <= 300, "new pods must get connections within minutes"
    for config in of_kind(objects, "ConfigMap"):
        for key, value in config.get("data", {}).items():
            if not key.endswith("_TARGET"):
                continue
            match = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", value)
            assert match, f"{config['metadata']['name']} {key}={value}: use dns:///<service>:<port>"
            service = services[match.group(1)]
            assert service["spec"]["clusterIP"] == "None"
            assert int(match.group(2)) in {p["port"] for p in service["spec"]["ports"]}


def policies_for(objects: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"] and matches(p["spec"]["podSelector"], labels)
    ]


def test_network_policies_deny_by_default_and_allow_dns(objects: list[dict[str, Any]]) -> None:
    policies = of_kind(objects, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {} and not {"ingress", "egress"} & set(p["spec"])
    ]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in deny)
    assert not any(p["spec"].get("egress") for p in deny)
    dns = named(objects, "NetworkPolicy", "allow-dns-egress")["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}


def test_every_workload_has_a_policy_of_its_own(objects: list[dict[str, Any]]) -> None:
    for workload in of_kind(objects, *WORKLOAD_KINDS):
        own = [
            p
            for p in policies_for(objects, pod_labels(workload))
            if p["spec"]["podSelector"].get("matchLabels", {}).get(NAME)
            == pod_labels(workload)[NAME]
            or p["spec"]["podSelector"].get("matchLabels", {}).get(COMPONENT)
            == pod_labels(workload).get(COMPONENT)
        ]
        assert own, f"{workload['metadata']['name']} has no NetworkPolicy of its own"
        assert any("Ingress" in p["spec"]["policyTypes"] for p in own)


def egress_pod_names(policy: dict[str, Any]) -> set[str]:
    names = set()
    for rule in policy["spec"].get("egress", []):
        for peer in rule.get("to", []):
            selector = peer.get("podSelector", {})
            if NAME in selector.get("matchLabels", {}):
                names.add(selector["matchLabels"][NAME])
    return names


def test_each_service_reaches_only_its_own_database(objects: list[dict[str, Any]]) -> None:
    for workload in app_workloads(objects, "grpc-service", "worker", "job"):
        service = workload["metadata"]["name"].split("-")[0]
        reached = set()
        for policy in policies_for(objects, pod_labels(workload)):
            reached |= {n for n in egress_pod_names(policy) if n.endswith("-database")}
        assert reached == {f"{service}-database"}, workload["metadata"]["name"]


def test_gateway_reaches_every_grpc_service(objects: list[dict[str, Any]]) -> None:
    reached = set()
    for policy in policies_for(objects, {NAME: "gateway"}):
        reached |= egress_pod_names(policy)
    services = {w["metadata"]["name"] for w in app_workloads(objects, "grpc-service")}
    # auth -> profile is the one service-to-service call (CreateProfile after signup).
    assert services <= reached
    for workload in app_workloads(objects, "grpc-service"):
        name = workload["metadata"]["name"]
        ingress_from = set()
        for policy in policies_for(objects, pod_labels(workload)):
            for rule in policy["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    ingress_from.add(peer.get("podSelector", {}).get("matchLabels", {}).get(NAME))
        assert "gateway" in ingress_from, name


def settings_class(package: str) -> type[BaseSettings]:
    """The settings class a container of image switchyard/<package> loads at start."""
    module = importlib.import_module(
        "gateway.settings" if package == "gateway" else f"{package}_service.config"
    )
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module.__name__}: expected one settings class, found {classes}"
    return classes[0]


def variables(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.add(str(alias.choices[0]))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def test_every_setting_a_container_reads_is_set(objects: list[dict[str, Any]]) -> None:
    checked = 0
    for workload in app_workloads(objects):
        for container in containers(workload):
            package = container["image"].split("/")[-1].split(":")[0].split("@")[0]
            wanted = variables(settings_class(package))
            given = {e["name"] for e in container.get("env", [])} | set(
                config_map_data(objects, container)
            )
            missing = sorted(wanted - given)
            assert not missing, (
                f"{workload['metadata']['name']}/{container['name']} does not set {missing}: "
                f"add them to k8s/base/{package}/configmap.yaml (or a Secret reference)"
            )
            checked += 1
    assert checked


def test_images_are_the_skaffold_artifacts(
    objects: list[dict[str, Any]], skaffold: dict[str, Any]
) -> None:
    artifacts = {a["image"] for a in skaffold["build"]["artifacts"]}
    used = set()
    for workload in app_workloads(objects):
        for container in containers(workload):
            image = re.split(r"[:@]", container["image"])[0]
            assert image in artifacts, f"{workload['metadata']['name']}: {image}"
            used.add(image)
    assert used == artifacts


def test_secrets_are_referenced_not_committed(overlay: str, objects: list[dict[str, Any]]) -> None:
    secrets = of_kind(objects, "Secret")
    if overlay == "prod":
        assert not secrets, "prod Secrets are made outside git"
    for secret in secrets:
        for value in secret.get("data", {}).values():
            text = base64.b64decode(value).decode()
            assert not re.search(r"//[^/@:]+:[^/@]+@", text), "no password in a committed URL"
    readme = (K8S / "README.md").read_text()
    for workload in of_kind(objects, *WORKLOAD_KINDS):
        spec = pod_template(workload)["spec"]
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for c in containers(workload)
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        refs += [
            {"name": v["secret"]["secretName"], "key": "*"}
            for v in spec.get("volumes", [])
            if "secret" in v
        ]
        generated = {s["metadata"]["name"] for s in secrets}
        for ref in refs:
            if ref["name"] in generated:
                continue
            service, _, kind = ref["name"].rpartition("-")
            if service in SERVICES and kind in ("database", "pgbouncer"):
                # One row documents these for every service of the registry.
                assert f"`<service>-{kind}`" in readme
                continue
            assert f"`{ref['name']}`" in readme, (
                f"k8s/README.md does not document Secret {ref['name']}"
            )


def test_ingress_terminates_tls_with_a_referenced_secret(objects: list[dict[str, Any]]) -> None:
    ingress = named(objects, "Ingress", "gateway")
    assert ingress["spec"]["tls"][0]["secretName"]
    hosts = ingress["spec"]["tls"][0]["hosts"]
    assert [r["host"] for r in ingress["spec"]["rules"]] == hosts


def test_monitors_select_real_endpoints(objects: list[dict[str, Any]]) -> None:
    services = of_kind(objects, "Service")
    for monitor in of_kind(objects, "ServiceMonitor"):
        selected = [
            s for s in services if matches(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert selected, monitor["metadata"]["name"]
        for endpoint in monitor["spec"]["endpoints"]:
            for service in selected:
                assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    for monitor in of_kind(objects, "PodMonitor"):
        pods = [
            w
            for w in of_kind(objects, *WORKLOAD_KINDS)
            if matches(monitor["spec"]["selector"], pod_labels(w))
        ]
        assert pods
        for workload in pods:
            ports = {p["name"] for c in containers(workload) for p in c.get("ports", [])}
            assert all(e["port"] in ports for e in monitor["spec"]["podMetricsEndpoints"])


def test_skaffold_config(skaffold: dict[str, Any]) -> None:
    assert skaffold["apiVersion"].startswith("skaffold/v4beta")
    assert skaffold["kind"] == "Config"
    for artifact in skaffold["build"]["artifacts"]:
        context = ROOT / artifact["context"]
        assert context.is_dir()
        assert (context / artifact["docker"]["dockerfile"]).is_file(), artifact["image"]
    assert "kubectl" in skaffold["deploy"]
    assert skaffold["manifests"]["kustomize"]["paths"] == ["k8s/overlays/dev"]
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    assert set(profiles) == {"dev", "prod"}
    for name, profile in profiles.items():
        for path in profile["manifests"]["kustomize"]["paths"]:
            assert (ROOT / path / "kustomization.yaml").is_file()
            assert path.endswith(name)
    assert skaffold["portForward"][0]["resourceName"] == "gateway"


def dockerfile_artifacts() -> list[Any]:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return [pytest.param(a, id=a["image"]) for a in config["build"]["artifacts"]]


@pytest.mark.parametrize("artifact", dockerfile_artifacts())
def test_dockerfile_shape(artifact: dict[str, Any]) -> None:
    text = dockerfile_text(artifact)
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)
    assert len(stages) == 3, "a build stage and a runtime stage"
    runtime = stages[2]
    package = re.search(r'--package "?([^\s"]+)', stages[1])
    assert package, "dependencies come from uv.lock for this package only"
    image = artifact["image"].split("/")[-1]
    folder = ROOT / ("gateway" if image == "gateway" else f"services/{image}")
    pyproject = (folder / "pyproject.toml").read_text()
    assert f'name = "{package.group(1)}"' in pyproject
    assert "uv sync --frozen --no-dev" in stages[1]
    assert "protos/generate.py" in stages[1]
    assert "RUN " not in runtime, "the runtime stage installs nothing (no build tools)"
    assert re.search(r"^USER [1-9]\d{4,}:\d+$", runtime, flags=re.MULTILINE), (
        "numeric non-root USER"
    )
    assert re.search(r'^ENTRYPOINT \["', runtime, flags=re.MULTILINE), "exec-form entrypoint"
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    assert "PYTHONUNBUFFERED=1" in runtime


def test_keda_scales_the_recommendation_worker_on_its_stream_lag(
    overlay: str, objects: list[dict[str, Any]]
) -> None:
    scaled = of_kind(objects, "ScaledObject")
    if overlay != "prod":
        assert not scaled, "KEDA is a prod requirement only"
        return
    worker = named(objects, "Deployment", "recommendation-worker")
    (scaler,) = [
        s for s in scaled if s["spec"]["scaleTargetRef"]["name"] == "recommendation-worker"
    ]
    trigger = scaler["spec"]["triggers"][0]
    assert trigger["type"] == "redis-streams"
    data = config_map_data(objects, worker["spec"]["template"]["spec"]["containers"][0])
    assert trigger["metadata"]["consumerGroup"] == data["RECOMMENDATION_WORKER_GROUP"]
    assert trigger["metadata"]["stream"] == "events.payments"
    authentication = named(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    for ref in authentication["spec"]["secretTargetRef"]:
        assert f"`{ref['name']}`" in (K8S / "README.md").read_text()
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    assert "recommendation-worker" not in hpa_targets, "KEDA owns the worker's HPA"
