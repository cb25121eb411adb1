"""`make run`: every Switchyard process on one machine, each with its own database.

Starts each service (migrations first), then the gateway, waits until each
answers its health check, prefixes and forwards their output, then keeps
them up (`switchyard_dev.supervisor`: a process that dies or hangs is
restarted on its own, the others keep serving), and on Ctrl-C (or SIGTERM)
stops them in reverse order with SIGTERM, giving each its grace period. The
end-to-end and fault tests start the platform with the same code.

Ports come from the environment (AUTH_PORT, PROFILE_PORT, ..., GATEWAY_PORT);
databases default to SQLite files under SWITCHYARD_DATA_DIR (./data), and
`<SERVICE>_DATABASE_URL` / `REDIS_URL` switch to PostgreSQL / Redis.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchyard.services import load_services
from switchyard_kit import LIVENESS_PATH

# Every service, its ports and its extra processes: the registry
# (protos/switchyard/services.toml). The tables below are read from it.
REGISTRY = load_services()
GATEWAY_PORT = 8080
# The gateway serves /metrics on this port only, never on the public one.
GATEWAY_METRICS_PORT = 9150

DEFAULT_PORTS = {**{s.name: s.port for s in REGISTRY}, "gateway": GATEWAY_PORT}
# Prometheus ports of each service's /metrics (and its relays' and workers'), so
# `make run` shows them all; `<NAME>_METRICS_PORT` overrides, 0 turns one off.
DEFAULT_METRICS_PORTS = {
    "gateway": GATEWAY_METRICS_PORT,
    **{s.name: s.metrics_port for s in REGISTRY},
    **{p.component: p.metrics_port for s in REGISTRY for p in s.processes if p.metrics_port},
}
# Each worker's and relay's liveness endpoint (/livez, its main loop's heartbeat),
# which the supervisor probes; `<NAME>_LIVENESS_PORT` overrides.
DEFAULT_LIVENESS_PORTS = {p.component: p.liveness_port for s in REGISTRY for p in s.processes}
# The settings prefix each worker's process reads (it runs its service's package).
WORKER_SERVICES = {p.component: p.service for s in REGISTRY for p in s.processes}
# A stuck loop is reported after this many seconds without a turn (k8s uses the
# services' default of 30 s; locally a hang shows sooner).
LOCAL_LIVENESS_MAX_AGE_SECONDS = "10"
# Services in start order (the registry's): a service is started after those it
# calls. Their relays and workers start after every service: without Redis a
# relay delivers to the EventSinkService of its service's `event_sinks`.
SERVICES = tuple(s.name for s in REGISTRY)


@dataclass
class Component:
    """One process of the platform and how to tell that it is up."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    health_grpc: str | None = None
    health_http: str | None = None
    prepare: Sequence[Sequence[str]] = field(default_factory=list)


@dataclass
class PlatformConfig:
    ports: dict[str, int]
    data_dir: Path
    python: str = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)
    # Empty (the tests' default): no metrics ports are set.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # Empty: workers serve no liveness endpoint and have no health check.
    liveness_ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> PlatformConfig:
        ports = {
            name: int(environ.get(f"{name.upper()}_PORT", default))
            for name, default in DEFAULT_PORTS.items()
        }
        metrics_ports = {
            name: int(environ.get(f"{name.upper().replace('-', '_')}_METRICS_PORT", default))
            for name, default in DEFAULT_METRICS_PORTS.items()
        }
        liveness_ports = {
            name: int(environ.get(f"{name.upper().replace('-', '_')}_LIVENESS_PORT", default))
            for name, default in DEFAULT_LIVENESS_PORTS.items()
        }
        return cls(
            ports=ports,
            data_dir=Path(environ.get("SWITCHYARD_DATA_DIR", "data")),
            metrics_ports=metrics_ports,
            liveness_ports=liveness_ports,
        )

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["SWITCHYARD_DATA_DIR"] = str(self.data_dir.resolve())
        env.setdefault("PYTHONUNBUFFERED", "1")
        for name, port in self.ports.items():
            env[f"{name.upper()}_PORT"] = str(port)
            if name != "gateway":
                env[f"{name.upper()}_TARGET"] = f"127.0.0.1:{port}"
        for name, port in self.metrics_ports.items():
            if name in self.ports:
                env[f"{name.upper()}_METRICS_PORT"] = str(port)
        return env


def platform_components(config: PlatformConfig) -> list[Component]:
    """The processes `make run` starts, in start order."""
    env = config.base_env()
    for service in REGISTRY:
        # The broker-less path: a relay calls its consumers' delivery RPC
        # (e.g. payment's relay -> recommendation's EventSinkService).
        sinks = [env[f"{s.upper()}_TARGET"] for s in service.event_sinks if s in config.ports]
        if sinks:
            env.setdefault(f"{service.prefix}_EVENT_SINKS", ",".join(sinks))
    components = [
        Component(
            name=name,
            argv=[config.python, "-m", f"{name}_service", "serve"],
            env=env,
            health_grpc=f"127.0.0.1:{config.ports[name]}",
            prepare=[[config.python, "-m", f"{name}_service", "migrate"]],
        )
        for name in SERVICES
    ]
    # The relays (outbox -> Redis Streams with REDIS_URL, else -> the event
    # sinks), then the stream consumers, which run only with REDIS_URL (without
    # Redis the consuming service's server takes the deliveries itself).
    processes = sorted(
        (p for s in REGISTRY for p in s.processes), key=lambda process: process.needs_redis
    )
    components += [
        Component(
            name=process.component,
            argv=[config.python, "-m", f"{process.service}_service", process.command],
            # A process with a metrics port of its own (0: none), not its server's.
            env={
                **env,
                f"{process.service.upper()}_METRICS_PORT": str(
                    config.metrics_ports.get(process.component, 0)
                ),
            },
        )
        for process in processes
        if env.get("REDIS_URL") or not process.needs_redis
    ]
    for component in components:
        _watch_liveness(component, config)
    components.append(
        Component(
            name="gateway",
            argv=[config.python, "-m", "gateway"],
            env=env,
            health_http=f"http://127.0.0.1:{config.ports['gateway']}/healthz",
        )
    )
    return components


def _watch_liveness(component: Component, config: PlatformConfig) -> None:
    """A worker's liveness endpoint on its port from `config`, as its health check."""
    service = WORKER_SERVICES.get(component.name)
    port = config.liveness_ports.get(component.name, 0)
    if service is None or not port:
        return
    prefix = service.upper()
    component.env = {
        **component.env,
        f"{prefix}_LIVENESS_PORT": str(port),
        f"{prefix}_LIVENESS_MAX_AGE_SECONDS": component.env.get(
            f"{prefix}_LIVENESS_MAX_AGE_SECONDS", LOCAL_LIVENESS_MAX_AGE_SECONDS
        ),
    }
    component.health_http = f"http://127.0.0.1:{port}{LIVENESS_PATH}"


def grpc_serving(target: str, timeout: float = 1.0, service: str = "") -> bool:
    """True when the server at `target` answers SERVING on grpc.health.v1 for
    `service` ("": readiness, "liveness": the process is alive)."""
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        # HTTPException: something that is not an HTTP/1 server answered
        # (another process's gRPC server on the port): not this component.
        return False


def _forward_output(name: str, stream: IO[str], sink: IO[str]) -> None:
    with stream:
        for line in stream:
            sink.write(f"{name:>8} | {line}")
            sink.flush()


def _kill_leftovers(process: subprocess.Popen[str]) -> None:
    """SIGKILL the rest of an exited process's group (e.g. the workers of a
    SIGKILLed gunicorn master, which would hold its port for seconds)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return  # the group is empty: nothing was left behind


class Platform:
    """Starts components in order and stops them in reverse."""

    def __init__(self, components: Sequence[Component], output: IO[str] | None = sys.stdout):
        self.components = components
        self.output = output
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self._forwarders: dict[str, threading.Thread] = {}
        # Held while a process is started or taken out, so a supervisor's
        # restart and a stop never race over the same name.
        self._lock = threading.Lock()

    def _spawn(self, component: Component, argv: Sequence[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv,
            env=dict(component.env),
            stdout=subprocess.PIPE if self.output else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            text=True,
            # A process group of its own, like a container: what it leaves
            # behind when it dies (gunicorn's workers) goes with it, and Ctrl-C
            # reaches the launcher alone, which stops each in order.
            start_new_session=True,
        )

    def start(self, timeout: float = 60.0) -> None:
        for component in self.components:
            self.start_component(component, timeout)

    def start_component(self, component: Component, timeout: float = 60.0) -> None:
        for step in component.prepare:
            process = self._spawn(component, step)
            out, _ = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"{component.name}: {' '.join(step)} failed:\n{out or ''}")
        self.launch(component)
        self.wait_healthy(component, timeout)

    def launch(
        self, component: Component, unless: threading.Event | None = None
    ) -> subprocess.Popen[str] | None:
        """Start the process (no prepare steps, no waiting) and forward its
        output; None, starting nothing, once `unless` is set."""
        with self._lock:
            if unless is not None and unless.is_set():
                return None
            process = self._spawn(component, component.argv)
            self.processes[component.name] = process
            if self.output and process.stdout:
                forwarder = threading.Thread(
                    target=_forward_output,
                    args=(component.name, process.stdout, self.output),
                    daemon=True,
                )
                forwarder.start()
                self._forwarders[component.name] = forwarder
            return process

    def reap(self, name: str, process: subprocess.Popen[str]) -> None:
        """Forget `process`, which has exited, kill what it left behind in its
        process group, and close its output."""
        _kill_leftovers(process)
        with self._lock:
            if self.processes.get(name) is process:
                del self.processes[name]
            forwarder = self._forwarders.pop(name, None)
        if forwarder is not None:
            # A child that left its group keeps the output open until it
            # exits: the forwarder closes the pipe then; the restart goes ahead.
            forwarder.join(timeout=0.2)
            if forwarder.is_alive():
                return
        if process.stdout is not None:
            process.stdout.close()

    def wait_healthy(self, component: Component, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        process = self.processes[component.name]
        if not (component.health_grpc or component.health_http):
            # A worker with no endpoint: alive after a short while is all we can ask.
            time.sleep(0.5)
            if process.poll() is not None:
                raise RuntimeError(f"{component.name} exited with code {process.returncode}")
            return
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{component.name} exited with code {process.returncode}")
            if component.health_grpc and grpc_serving(component.health_grpc):
                return
            if component.health_http and http_ok(component.health_http):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{component.name} not healthy after {timeout:.0f}s")

    def stop_component(self, name: str, grace: float = 20.0) -> int | None:
        with self._lock:
            process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _kill_leftovers(process)
        forwarder = self._forwarders.pop(name, None)
        if forwarder is not None:
            forwarder.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def stop(self, grace: float = 20.0) -> None:
        # Reverse start order, whatever order restarts left `processes` in.
        order = [component.name for component in self.components]
        names = [name for name in order if name in self.processes]
        names += [name for name in self.processes if name not in order]
        for name in reversed(names):
            self.stop_component(name, grace)
