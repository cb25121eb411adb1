"""The prod overlay's payment shards: a valid slot map in a ConfigMap, read by
every payment process (server, relay, their migrations, the scheduled jobs) with the shard URLs
from a Secret."""

from __future__ import annotations

import json
from typing import Any

from payment_service.domain.shards import SlotMap

from deploy.conftest import render

MAP_FILE = "/etc/switchyard/payment-shard-map/shard-map.json"


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def payment_containers(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """Every container of a payment workload that opens its databases: the
    server, the relay, their migrations and the scheduled jobs."""
    found = []
    for doc in objects:
        name = doc["metadata"]["name"]
        server = doc["kind"] == "Deployment" and name in ("payment", "payment-relay")
        job = doc["kind"] == "CronJob" and name.startswith("payment-")
        if not (server or job):
            continue
        spec = pod_spec(doc)
        found += [(doc, c) for c in spec.get("initContainers", []) + spec["containers"]]
    return found


def test_the_prod_shard_map_gives_every_slot_one_shard() -> None:
    objects = render("prod")
    (config_map,) = [
        doc
        for doc in objects
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("payment-shard-map")
    ]
    data = json.loads(config_map["data"]["shard-map.json"])
    slot_map = SlotMap.from_ranges(data["shards"], data["slot_count"])
    assert slot_map.shards == ["s0", "s1", "s2", "s3"]
    containers = payment_containers(objects)
    # payment and payment-relay, each with its migrate init container, and the
    # two scheduled jobs (key clean-up and reconcile go over every shard).
    assert len(containers) == 6
    for workload, container in containers:
        env = {e["name"]: e for e in container["env"]}
        source = env["PAYMENT_SHARDS"]["valueFrom"]["secretKeyRef"]
        assert source["name"] == "payment-database"
        assert source["key"] == ("migration-shards" if container["name"] == "migrate" else "shards")
        assert env["PAYMENT_SHARD_MAP_FILE"]["value"] == MAP_FILE
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        (mount,) = [m for m in container["volumeMounts"] if MAP_FILE.startswith(m["mountPath"])]
        assert volumes[mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"]


def test_one_shard_outside_prod() -> None:
    for doc, container in payment_containers(render("dev")):
        names = {e["name"] for e in container.get("env", [])}
        assert "PAYMENT_SHARDS" not in names, doc["metadata"]["name"]
