"""The CronJobs of a service's scheduled jobs, generated from the registry.

`make registry` writes them into k8s/base/<name>/cronjobs.yaml (a generated
region, see switchyard_dev.registry): one CronJob `<name>-<command>` per
`[[service.job]]` of protos/switchyard/services.toml, on its schedule, plus
the ServiceAccount and NetworkPolicy their pods share (`<name>-job`).

Each job's pod is its service's pod run to completion: the container's
image, environment (ConfigMap and Secrets), security contexts and /tmp
volume are copied from the service's Deployment (k8s/base/<name>/deployment.yaml),
so a setting or a hardening added there reaches the jobs at the next
`make registry`, and tests/deploy/test_jobs.py fails until it has.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from switchyard.services import ServiceEntry, ServiceJob

# A run that has not started this long after its time is skipped (a controller
# outage or Forbid waiting out a long previous run), rather than piled up.
STARTING_DEADLINE_SECONDS = 600
# Retries of a failed run (each a new pod), then the Job fails: kube_job_failed.
BACKOFF_LIMIT = 2
# A run still going after this long is stopped: bounded per run includes time.
ACTIVE_DEADLINE_SECONDS = 1800
SUCCESSFUL_JOBS_KEPT = 3
# Failed Jobs stay listed (and kube_job_failed stays 1) until this many newer fail.
FAILED_JOBS_KEPT = 3
RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}
CHECKOV_SKIPS = {
    "checkov.io/skip1": "CKV_K8S_43=skaffold deploys the built image by digest; plain kubectl"
    " users pin it with kustomize edit set image (k8s/README.md)",
    "checkov.io/skip2": "CKV_K8S_15=tags are immutable (versions, commit shas, digests), so"
    " IfNotPresent is correct, and images loaded into kind/minikube are never in a registry",
    "checkov.io/skip3": "CKV_K8S_35=the services read settings, secrets included, from the"
    " environment only (typed settings classes); nothing is written to disk",
    "checkov.io/skip4": "CKV_K8S_8=a job runs to completion and serves nothing: a hung run is"
    " ended by activeDeadlineSeconds, not a liveness probe",
    "checkov.io/skip5": "CKV_K8S_9=a job takes no traffic, so readiness has no meaning for it",
}


def _labels(service: ServiceEntry) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"{service.name}-job",
        "app.kubernetes.io/component": "job",
        "app.kubernetes.io/part-of": "switchyard",
    }


def service_deployment(root: Path, service: ServiceEntry) -> dict[str, Any]:
    """The service's own Deployment (its gRPC server) as written in k8s/base."""
    path = root / "k8s" / "base" / service.name / "deployment.yaml"
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") == "Deployment":
            return dict(document)
    raise LookupError(f"{path}: no Deployment")


def _cronjob(job: ServiceJob, service: ServiceEntry, deployment: dict[str, Any]) -> dict[str, Any]:
    pod = deployment["spec"]["template"]["spec"]
    server = pod["containers"][0]
    container = {
        "name": "job",
        "image": server["image"],
        "imagePullPolicy": server["imagePullPolicy"],
        "args": [job.command],
        "envFrom": copy.deepcopy(server["envFrom"]),
        "env": copy.deepcopy(server["env"]),
        "resources": copy.deepcopy(RESOURCES),
        "securityContext": copy.deepcopy(server["securityContext"]),
        "volumeMounts": copy.deepcopy(server["volumeMounts"]),
    }
    labels = _labels(service)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": job.workload,
            "annotations": dict(CHECKOV_SKIPS),
            "labels": dict(labels),
        },
        "spec": {
            "schedule": job.schedule,
            # The registry's schedules are UTC, as the `make run` scheduler reads them.
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_KEPT,
            "failedJobsHistoryLimit": FAILED_JOBS_KEPT,
            "jobTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "backoffLimit": BACKOFF_LIMIT,
                    "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
                    "template": {
                        "metadata": {"labels": {**labels, "switchyard.io/job": job.command}},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": f"{service.name}-job",
                            "automountServiceAccountToken": False,
                            "securityContext": copy.deepcopy(pod["securityContext"]),
                            "containers": [container],
                            "volumes": copy.deepcopy(pod["volumes"]),
                        },
                    },
                },
            },
        },
    }


def _service_account(service: ServiceEntry) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": f"{service.name}-job", "labels": _labels(service)},
        "automountServiceAccountToken": False,
    }


def _network_policy(service: ServiceEntry) -> dict[str, Any]:
    # In: nothing. Out: its own database (Redis, for the jobs that need it:
    # allow-redis-egress, from the registry's redis-clients list).
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{service.name}-job", "labels": _labels(service)},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": f"{service.name}-job"}},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "podSelector": {
                                "matchLabels": {
                                    "app.kubernetes.io/name": f"{service.name}-database"
                                }
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 5432}],
                }
            ],
        },
    }


def cronjob_lines(root: Path, service: ServiceEntry) -> list[str]:
    """The YAML documents of the service's jobs, one line per item."""
    deployment = service_deployment(root, service)
    documents = [
        _service_account(service),
        _network_policy(service),
        *(_cronjob(job, service, deployment) for job in service.jobs),
    ]
    text: str = yaml.safe_dump_all(documents, sort_keys=False, width=100)
    return text.rstrip("\n").split("\n")


def cronjob_files(services: Sequence[ServiceEntry]) -> tuple[str, ...]:
    """The generated manifest file of each service that has scheduled jobs."""
    return tuple(f"k8s/base/{s.name}/cronjobs.yaml" for s in services if s.jobs)
