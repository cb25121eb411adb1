"""The scheduled jobs: one list (the registry's [[service.job]]), the k8s
CronJobs and the `make run` scheduler agree with it, and every CronJob is
set up to run one bounded run at a time, as hardened as its service."""

from __future__ import annotations

import copy
import importlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cronsim import CronSim
from switchyard.services import ServiceJob, load_services, parse_services
from switchyard_dev.cronjobs import service_deployment

from deploy.conftest import ROOT, render
from deploy.test_manifests import NAME, named, of_kind

JOBS = {job.workload: job for service in load_services() for job in service.jobs}


def test_every_job_is_a_command_of_its_service() -> None:
    for job in JOBS.values():
        main = importlib.import_module(f"{job.service}_service.__main__")
        assert job.command in main.COMMANDS, f"{job.workload}: no command {job.command!r}"


def test_every_schedule_is_a_valid_five_field_cron_expression() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for job in JOBS.values():
        assert len(job.schedule.split()) == 5
        first = next(CronSim(job.schedule, start))
        # Each job runs at least daily: the late-job alert waits 25 hours.
        assert (first - start).total_seconds() <= 86_400, job.workload


def test_a_registry_job_needs_a_command_and_a_schedule() -> None:
    entry = (
        "[[service]]\nname = 'one'\ngrpc_service = 'switchyard.one.v1.OneService'\n"
        "proto_module = 'switchyard.one.v1.one_pb2'\nport = 50061\nmetrics_port = 9171\n"
    )
    job = "[[service.job]]\ncommand = 'tidy'\n"
    assert parse_services(entry + job + "schedule = '5 * * * *'\n")[0].jobs == (
        ServiceJob("one", "tidy", "5 * * * *"),
    )
    with pytest.raises(ValueError, match="five cron fields"):
        parse_services(entry + job + "schedule = '@hourly'\n")


@pytest.fixture(params=["dev", "prod"])
def cronjobs(request: pytest.FixtureRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    objects = render(str(request.param))
    return objects, of_kind(objects, "CronJob")


def test_the_cronjobs_are_the_registry_s_jobs_on_its_schedules(cronjobs) -> None:
    _, found = cronjobs
    assert {c["metadata"]["name"]: c["spec"]["schedule"] for c in found} == {
        name: job.schedule for name, job in JOBS.items()
    }
    for cronjob in found:
        job = JOBS[cronjob["metadata"]["name"]]
        (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [job.command]
        assert cronjob["spec"]["timeZone"] == "Etc/UTC"  # the scheduler's zone


def test_every_cronjob_runs_one_bounded_run_at_a_time(cronjobs) -> None:
    _, found = cronjobs
    for cronjob in found:
        spec = cronjob["spec"]
        where = cronjob["metadata"]["name"]
        assert spec["concurrencyPolicy"] == "Forbid", where
        assert 0 < spec["startingDeadlineSeconds"] <= 3600, where
        assert spec["successfulJobsHistoryLimit"] >= 1, where
        assert spec["failedJobsHistoryLimit"] >= 1, where
        run = spec["jobTemplate"]["spec"]
        assert 0 <= run["backoffLimit"] <= 6, where
        assert 0 < run["activeDeadlineSeconds"] <= 3600, where
        assert run["template"]["spec"]["restartPolicy"] == "Never", where


def test_a_job_s_pod_is_its_service_s_pod(cronjobs) -> None:
    """Same image, environment and security contexts as the service's own
    Deployment as rendered by the overlay (so an overlay's patch of one, e.g.
    dev's optional signing key, reaches both)."""
    objects, found = cronjobs
    for cronjob in found:
        job = JOBS[cronjob["metadata"]["name"]]
        server_pod = named(objects, "Deployment", job.service)["spec"]["template"]["spec"]
        server = server_pod["containers"][0]
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        where = cronjob["metadata"]["name"]
        assert pod["securityContext"] == server_pod["securityContext"], where
        for key in ("image", "imagePullPolicy", "envFrom", "securityContext"):
            assert container[key] == server[key], f"{where}: {key}"
        assert _read_url_optional(container["env"]) == _read_url_optional(server["env"]), where
        assert pod["serviceAccountName"] == f"{job.service}-job"
        labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        assert labels[NAME] == f"{job.service}-job"


def test_the_generator_copies_the_deployment_as_written() -> None:
    # The generated file is up to date (test_registry), and built from this:
    for service in load_services():
        if service.jobs:
            deployment = service_deployment(ROOT, service)
            assert deployment["metadata"]["name"] == service.name


def _read_url_optional(env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`env` by name, with the replica's read URL marked optional: prod
    requires it of a service's server (replica-settings.yaml, whose patch also
    moves it first), a job keeps the base's optional one, since its runs
    write, or read to decide, on the primary only."""
    relaxed = copy.deepcopy(env)
    for variable in relaxed:
        ref = variable.get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("key") == "read-url":
            ref["optional"] = True
    return sorted(relaxed, key=lambda variable: str(variable["name"]))
