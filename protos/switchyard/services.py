"""The registry of Switchyard services (services.toml beside this module), typed and checked.

Plain standard library: it needs no generated code, so `make lint` can ask it
for the package list before anything else. Example::

    from switchyard.services import load_services

    for service in load_services():
        print(service.name, service.port)   # profile 50052, auth 50051, ...

`python -m switchyard.services [names|packages|json]` prints the list (the
Makefile reads `packages`: the import packages, `auth_service`, ...).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "RegistryError",
    "ServiceEntry",
    "ServiceJob",
    "ServiceProcess",
    "load_services",
    "parse_services",
    "service_named",
]

NAME = re.compile(r"^[a-z][a-z0-9]*$")
COMMAND = re.compile(r"^[a-z][a-z0-9-]*$")
_SERVICE_KEYS = {"name", "grpc_service", "proto_module", "port", "metrics_port", "event_sinks"}
_PROCESS_KEYS = {"command", "liveness_port", "metrics_port", "needs_redis", "component"}
_JOB_KEYS = {"command", "schedule", "needs_redis"}
# Five cron fields (minute hour day-of-month month day-of-week), the syntax both
# a Kubernetes CronJob and the `make run` scheduler (cronsim) read; the fields
# themselves are checked there (tests/deploy/test_jobs.py), this only the shape.
SCHEDULE = re.compile(r"^\S+( \S+){4}$")


class RegistryError(ValueError):
    """services.toml is malformed; the message names the entry and the key."""


@dataclass(frozen=True)
class ServiceProcess:
    """An extra long-running process of a service: `python -m <pkg> <command>`."""

    service: str
    command: str
    liveness_port: int
    metrics_port: int = 0
    needs_redis: bool = False
    component: str = ""

    @property
    def workload(self) -> str:
        """Its Kubernetes workload name: `<service>-<command>`."""
        return f"{self.service}-{self.command}"


@dataclass(frozen=True)
class ServiceJob:
    """A scheduled job of a service: `python -m <pkg> <command>` on `schedule`
    (a five-field cron expression, UTC), a CronJob `<service>-<command>` in
    k8s and a run of the `make run` scheduler locally."""

    service: str
    command: str
    schedule: str
    needs_redis: bool = False

    @property
    def workload(self) -> str:
        """Its Kubernetes CronJob name: `<service>-<command>`."""
        return f"{self.service}-{self.command}"


@dataclass(frozen=True)
class ServiceEntry:
    """One service: where it listens, its contract, its extra processes."""

    name: str
    grpc_service: str
    proto_module: str
    port: int
    metrics_port: int
    event_sinks: tuple[str, ...] = ()
    processes: tuple[ServiceProcess, ...] = ()
    jobs: tuple[ServiceJob, ...] = ()

    @property
    def package(self) -> str:
        """The import package: `<name>_service`."""
        return f"{self.name}_service"

    @property
    def distribution(self) -> str:
        """The distribution (and uv package) name: `switchyard-<name>`."""
        return f"switchyard-{self.name}"

    @property
    def prefix(self) -> str:
        """The prefix of its settings: `<NAME>`, as in `<NAME>_PORT`."""
        return self.name.upper()

    @property
    def grpc_service_name(self) -> str:
        """The short name of its gRPC service, as in the proto file's descriptor."""
        return self.grpc_service.rsplit(".", 1)[-1]


def _port(where: str, table: Mapping[str, Any], key: str, *, required: bool = True) -> int:
    value = table.get(key, None if required else 0)
    if value is None:
        raise RegistryError(f"{where}: `{key}` is missing")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise RegistryError(f"{where}: `{key}` must be a port number, not {value!r}")
    if required and value == 0:
        raise RegistryError(f"{where}: `{key}` must not be 0")
    return value


def _string(where: str, table: Mapping[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{where}: `{key}` must be a non-empty string")
    return value


def _unknown(where: str, table: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise RegistryError(f"{where}: unknown key(s) {', '.join(extra)}")


def _process(service: str, table: Mapping[str, Any]) -> ServiceProcess:
    where = f"service {service!r}, process {table.get('command')!r}"
    _unknown(where, table, _PROCESS_KEYS)
    command = _string(where, table, "command")
    if not COMMAND.match(command):
        raise RegistryError(f"{where}: `command` must match {COMMAND.pattern}")
    needs_redis = table.get("needs_redis", False)
    if not isinstance(needs_redis, bool):
        raise RegistryError(f"{where}: `needs_redis` must be true or false")
    component = table.get("component", f"{service}-{command}")
    if not isinstance(component, str) or not COMMAND.match(component):
        raise RegistryError(f"{where}: `component` must match {COMMAND.pattern}")
    return ServiceProcess(
        service=service,
        command=command,
        liveness_port=_port(where, table, "liveness_port"),
        metrics_port=_port(where, table, "metrics_port", required=False),
        needs_redis=needs_redis,
        component=component,
    )


def _job(service: str, table: Mapping[str, Any]) -> ServiceJob:
    where = f"service {service!r}, job {table.get('command')!r}"
    _unknown(where, table, _JOB_KEYS)
    command = _string(where, table, "command")
    if not COMMAND.match(command):
        raise RegistryError(f"{where}: `command` must match {COMMAND.pattern}")
    schedule = _string(where, table, "schedule")
    if not SCHEDULE.match(schedule):
        raise RegistryError(f"{where}: `schedule` must be five cron fields, not {schedule!r}")
    needs_redis = table.get("needs_redis", False)
    if not isinstance(needs_redis, bool):
        raise RegistryError(f"{where}: `needs_redis` must be true or false")
    return ServiceJob(service, command, schedule, needs_redis)


def _service(table: Mapping[str, Any]) -> ServiceEntry:
    where = f"service {table.get('name')!r}"
    _unknown(where, table, _SERVICE_KEYS | {"process", "job"})
    name = _string(where, table, "name")
    if not NAME.match(name):
        raise RegistryError(f"{where}: `name` must match {NAME.pattern}")
    grpc_service = _string(where, table, "grpc_service")
    proto_module = _string(where, table, "proto_module")
    if not grpc_service.startswith(f"switchyard.{name}."):
        raise RegistryError(f"{where}: `grpc_service` must be in package switchyard.{name}")
    sinks = table.get("event_sinks", [])
    if not isinstance(sinks, list) or not all(isinstance(s, str) for s in sinks):
        raise RegistryError(f"{where}: `event_sinks` must be a list of service names")
    processes = table.get("process", [])
    if not isinstance(processes, list):
        raise RegistryError(f"{where}: `process` must be an array of tables ([[service.process]])")
    jobs = table.get("job", [])
    if not isinstance(jobs, list):
        raise RegistryError(f"{where}: `job` must be an array of tables ([[service.job]])")
    return ServiceEntry(
        name=name,
        grpc_service=grpc_service,
        proto_module=proto_module,
        port=_port(where, table, "port"),
        metrics_port=_port(where, table, "metrics_port"),
        event_sinks=tuple(sinks),
        processes=tuple(_process(name, process) for process in processes),
        jobs=tuple(_job(name, job) for job in jobs),
    )


def parse_services(text: str) -> tuple[ServiceEntry, ...]:
    """The services of a registry document (TOML), checked as a whole."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"services.toml: {exc}") from exc
    _unknown("services.toml", document, {"service"})
    tables = document.get("service", [])
    if not isinstance(tables, list) or not tables:
        raise RegistryError("services.toml: no [[service]] table")
    services = tuple(_service(table) for table in tables)
    _check_whole(services)
    return services


def _check_workloads(services: Sequence[ServiceEntry]) -> None:
    """A CronJob's name must not be another workload's (k8s names are per kind,
    but its pods' labels and NetworkPolicies key on the name alone)."""
    workloads = [p.workload for s in services for p in s.processes]
    for job in (j for s in services for j in s.jobs):
        if job.workload in workloads:
            raise RegistryError(f"workload {job.workload!r} is named twice")
        workloads.append(job.workload)


def _check_whole(services: Sequence[ServiceEntry]) -> None:
    names = [s.name for s in services]
    for name in names:
        if names.count(name) > 1:
            raise RegistryError(f"service {name!r} is listed twice")
    components = [p.component for s in services for p in s.processes]
    _check_workloads(services)
    for component in [*names, *components]:
        if [*names, *components].count(component) > 1:
            raise RegistryError(f"launcher component {component!r} is named twice")
    ports: dict[int, str] = {}
    for service in services:
        owned = [
            (service.port, f"{service.name} port"),
            (service.metrics_port, f"{service.name} metrics_port"),
        ]
        for process in service.processes:
            owned.append((process.liveness_port, f"{process.component} liveness_port"))
            if process.metrics_port:
                owned.append((process.metrics_port, f"{process.component} metrics_port"))
        for port, owner in owned:
            if port in ports:
                raise RegistryError(f"port {port} is both {ports[port]} and {owner}")
            ports[port] = owner
        for sink in service.event_sinks:
            if sink not in names or sink == service.name:
                raise RegistryError(f"service {service.name!r}: unknown event sink {sink!r}")


@cache
def load_services() -> tuple[ServiceEntry, ...]:
    """Every service of services.toml (shipped in this package), in start order."""
    text = resources.files(__package__ or "switchyard").joinpath("services.toml").read_text()
    return parse_services(text)


def service_named(name: str) -> ServiceEntry:
    """The entry of service `name`; KeyError if there is none."""
    for service in load_services():
        if service.name == name:
            return service
    raise KeyError(name)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the registry: `names`, `packages` (one a line) or `json`."""
    what = (list(sys.argv[1:] if argv is None else argv) or ["names"])[0]
    services = load_services()
    if what == "names":
        print("\n".join(s.name for s in services))
    elif what == "packages":
        print("\n".join(s.package for s in services))
    elif what == "json":
        print(json.dumps([asdict(s) for s in services], indent=2))
    else:
        print(f"usage: python -m switchyard.services [names|packages|json], not {what!r}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
