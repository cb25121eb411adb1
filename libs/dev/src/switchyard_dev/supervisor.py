"""Keeps a started `Platform` up the way a cluster would: a process that exits,
is killed, or stops answering its health check is restarted with capped
exponential backoff, on its own, while every other process keeps serving.

One thread per process watches it (so a hung health check of one never
delays another): it polls the process and, every `check_interval`, its
liveness (gRPC health service "liveness" for a server, /healthz for the
gateway, the /livez heartbeat endpoint for a worker or relay). A process
that has not answered for `unhealthy_seconds` (`startup_seconds` before its
first answer) is SIGKILLed and restarted like one that exited. A run that
stayed healthy for `reset_after` seconds forgets the earlier failures; one
that failed `crash_loop_after` times in a row is reported as a crash loop,
loudly, and is still retried every `max_delay` seconds.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from switchyard_kit import LIVENESS_SERVICE

from switchyard_dev.launcher import Component, Platform, grpc_serving, http_ok


@dataclass(frozen=True)
class RestartPolicy:
    """How fast to restart, when to forgive, when to call it a crash loop."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    # Healthy this long in one run: earlier failures are forgotten.
    reset_after: float = 30.0
    # Failures in a row (without a healthy `reset_after` between) that make a crash loop.
    crash_loop_after: int = 5
    check_interval: float = 0.5
    # No answer for this long after the first one (a hang): SIGKILL and restart.
    unhealthy_seconds: float = 10.0
    # Before the first answer a process gets this long (migrations, imports).
    startup_seconds: float = 60.0


class Backoff:
    """Restart delays of one process: first_delay, doubled per failure in a
    row, capped at max_delay, back to first_delay once a run has stayed
    healthy for reset_after seconds.

    Example::

        backoff = Backoff(RestartPolicy(), clock=time.monotonic)
        backoff.started(); backoff.healthy()   # each health check that passes
        delay = backoff.failed()                # it exited: wait `delay`, start again
    """

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.failures = 0
        self._healthy_since: float | None = None

    def started(self) -> None:
        self._healthy_since = None

    def healthy(self) -> None:
        now = self.clock()
        if self._healthy_since is None:
            self._healthy_since = now
        elif now - self._healthy_since >= self.policy.reset_after:
            self.failures = 0

    def unhealthy(self) -> None:
        self._healthy_since = None

    def failed(self) -> float:
        """Count one failure; the delay before the next start."""
        since = self._healthy_since
        if since is not None and self.clock() - since >= self.policy.reset_after:
            self.failures = 0
        self.failures += 1
        self._healthy_since = None
        delay = self.policy.first_delay * self.policy.factor ** (self.failures - 1)
        return float(min(self.policy.max_delay, delay))

    @property
    def crash_looping(self) -> bool:
        return self.failures >= self.policy.crash_loop_after


@dataclass(frozen=True)
class Restart:
    """One restart, as reported: who, why, and the delay before it."""

    name: str
    reason: str  # "exited" or "unresponsive"
    returncode: int | None
    delay: float
    failures: int
    at: float = field(default_factory=time.monotonic)


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class Supervisor:
    """Watches every process of a started Platform and restarts the ones that fail.

    Example::

        platform.start()
        supervisor = Supervisor(platform).start()
        ...                                  # until Ctrl-C
        supervisor.stop()                    # no more restarts, then SIGTERM in reverse order
    """

    def __init__(
        self,
        platform: Platform,
        policy: RestartPolicy | None = None,
        report: Callable[[str], None] = _print,
    ) -> None:
        self.platform = platform
        self.policy = policy or RestartPolicy()
        self.report = report
        self.restarts: list[Restart] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._state: dict[str, str] = {}
        self._backoff: dict[str, Backoff] = {}

    def start(self) -> Supervisor:
        for component in self.platform.components:
            self._backoff[component.name] = Backoff(self.policy)
            self._state[component.name] = "up"
            thread = threading.Thread(
                target=self._supervise,
                # Restarts skip the migrations: they ran before the first start.
                args=(dataclasses.replace(component, prepare=[]),),
                name=f"supervise-{component.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def request_stop(self) -> None:
        """No restart from now on (safe from a signal handler)."""
        self._stopping.set()

    def stop(self, grace: float = 20.0) -> None:
        """Stop restarting, then stop every process in reverse start order."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.policy.check_interval + 5)
        self.platform.stop(grace)

    def status(self) -> dict[str, str]:
        return dict(self._state)

    def status_lines(self) -> str:
        return "".join(f"    {name:<22}{state}\n" for name, state in self._state.items())

    def _supervise(self, component: Component) -> None:
        name = component.name
        backoff = self._backoff[name]
        while not self._stopping.is_set():
            process = self.platform.processes.get(name)
            if process is None:
                process = self.platform.launch(component, unless=self._stopping)
                if process is None:
                    return
                self._state[name] = "starting" if not backoff.crash_looping else self._state[name]
            backoff.started()
            reason = self._watch(component, process, backoff)
            if reason is None:
                return
            if reason == "unresponsive" and process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
            self.platform.reap(name, process)
            self._restart_later(name, reason, process.returncode, backoff)

    def _restart_later(
        self, name: str, reason: str, returncode: int | None, backoff: Backoff
    ) -> None:
        delay = backoff.failed()
        restart = Restart(name, reason, returncode, delay, backoff.failures)
        self.restarts.append(restart)
        what = (
            f"exited with code {returncode}"
            if reason == "exited"
            else f"stopped answering its health check for {self.policy.unhealthy_seconds:g}s"
            " (killed)"
        )
        if backoff.crash_looping:
            self._state[name] = f"CRASH LOOP ({backoff.failures} failures in a row)"
            self.report(
                f"switchyard: !!! CRASH LOOP: {name} {what}; {backoff.failures} failures in a"
                f" row. Retrying in {delay:g}s; every other process keeps serving.\n"
                f"switchyard: status:\n{self.status_lines()}"
            )
        else:
            self._state[name] = f"restarting ({what})"
            self.report(f"switchyard: {name} {what}; restarting in {delay:g}s")
        self._stopping.wait(delay)

    def _watch(
        self, component: Component, process: subprocess.Popen[str], backoff: Backoff
    ) -> str | None:
        """Until the process exits ("exited"), stops answering ("unresponsive"),
        or the platform stops (None)."""
        started = time.monotonic()
        answered: float | None = None
        while not self._stopping.wait(self.policy.check_interval):
            if process.poll() is not None:
                return None if self._stopping.is_set() else "exited"
            now = time.monotonic()
            if _alive(component):
                if answered is None or self._state[component.name] != "up":
                    if self._state[component.name] != "up":
                        self.report(f"switchyard: {component.name} is up again")
                    self._state[component.name] = "up"
                answered = now
                backoff.healthy()
                continue
            backoff.unhealthy()
            since, limit = (
                (started, self.policy.startup_seconds)
                if answered is None
                else (answered, self.policy.unhealthy_seconds)
            )
            if now - since > limit and not self._stopping.is_set():
                return "unresponsive"
        return None


def _alive(component: Component) -> bool:
    """Liveness, not readiness: a server whose database is down stays up."""
    if component.health_grpc:
        return grpc_serving(component.health_grpc, timeout=1.0, service=LIVENESS_SERVICE)
    if component.health_http:
        return http_ok(component.health_http, timeout=1.0)
    return True
