"""The prod overlay's PgBouncer is the one the tests run through, and only the
services go through it: migrations connect directly."""

from __future__ import annotations

from typing import Any

import pytest
from switchyard_dev.pgbouncer import PROD_INI

from deploy.test_manifests import app_workloads, named

DATABASE_URL = "_DATABASE_URL"


@pytest.mark.parametrize("overlay", ["prod"])
def test_every_pgbouncer_runs_the_ini_the_tests_run(objects: list[dict[str, Any]]) -> None:
    config = named(objects, "ConfigMap", "pgbouncer-config")
    assert config["data"]["pgbouncer.ini"] == PROD_INI.read_text()
    bouncers = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "pgbouncer"
    ]
    assert bouncers
    for bouncer in bouncers:
        volumes = bouncer["spec"]["template"]["spec"]["volumes"]
        assert {"name": "config", "configMap": {"name": "pgbouncer-config"}} in volumes


def database_url_keys(workload: dict[str, Any], containers: str) -> set[str]:
    """The Secret keys the `<SERVICE>_DATABASE_URL` of these containers come from."""
    keys = set()
    for container in workload["spec"]["template"]["spec"].get(containers, []):
        for variable in container.get("env", []):
            if variable["name"].endswith(DATABASE_URL):
                keys.add(variable["valueFrom"]["secretKeyRef"]["key"])
    return keys


def test_migrations_connect_directly_and_services_through_the_pooler(
    objects: list[dict[str, Any]],
) -> None:
    """`migration-url` is the server itself, `url` PgBouncer in prod
    (k8s/README.md): the migrate init containers take the first, the rest the
    second, as payment's tests migrate directly and serve through PgBouncer."""
    for workload in app_workloads(objects, "grpc-service", "worker"):
        name = workload["metadata"]["name"]
        assert database_url_keys(workload, "initContainers") == {"migration-url"}, name
        assert database_url_keys(workload, "containers") == {"url"}, name
