"""The `make run` scheduler: each service's scheduled jobs, locally, on the
schedules of their k8s CronJobs.

Both read the registry's `[[service.job]]` entries (protos/switchyard/services.toml):
`make registry` writes them into the CronJobs, and this module starts
`python -m <name>_service <command>` when its five-field UTC schedule (parsed
by cronsim, the parser of Healthchecks.io) comes due. It behaves as the CronJobs are set
up (switchyard_dev.cronjobs): a run still going when the next one is due
means the next is skipped (concurrencyPolicy Forbid); a run more than
STARTING_DEADLINE_SECONDS late (the laptop slept) is skipped, not caught up;
a run is stopped after ACTIVE_DEADLINE_SECONDS. A run's output goes to the
terminal like every other process's, and its exit is reported; a failed run
is not retried before its next time (the CronJob's backoffLimit is for a lost
node, which a laptop has not).

Example::

    scheduler = Scheduler(platform, scheduled_jobs(config)).start()
    ...
    scheduler.stop()
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from switchyard_dev.cronjobs import ACTIVE_DEADLINE_SECONDS, STARTING_DEADLINE_SECONDS
from switchyard_dev.launcher import REGISTRY, Component, Platform, PlatformConfig


@dataclass(frozen=True)
class ScheduledJob:
    """One job: its name (the CronJob's, `<service>-<command>`), its schedule,
    and the process a run starts."""

    component: Component
    schedule: str

    @property
    def name(self) -> str:
        return self.component.name


def scheduled_jobs(config: PlatformConfig) -> list[ScheduledJob]:
    """Every job of the registry that `make run` schedules with this
    configuration (those that need Redis only when REDIS_URL is set)."""
    env = config.base_env()
    return [
        ScheduledJob(
            Component(
                name=job.workload,
                argv=[config.python, "-m", f"{service.package}", job.command],
                env=env,
            ),
            job.schedule,
        )
        for service in REGISTRY
        for job in service.jobs
        if env.get("REDIS_URL") or not job.needs_redis
    ]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


@dataclass
class _Run:
    process: subprocess.Popen[str]
    started: datetime


class Scheduler:
    """Starts each job's runs on its schedule, through `platform` (which
    forwards their output and stops what still runs when it stops).

    `tick(now)` does one round (start what is due, reap what ended, stop what
    overran); `start()` runs rounds on a thread until `stop()`. Tests drive
    `tick` with a clock of their own.
    """

    def __init__(
        self,
        platform: Platform,
        jobs: Sequence[ScheduledJob],
        *,
        clock: Callable[[], datetime] = _utc_now,
        report: Callable[[str], None] = _print,
        starting_deadline: timedelta = timedelta(seconds=STARTING_DEADLINE_SECONDS),
        active_deadline: timedelta = timedelta(seconds=ACTIVE_DEADLINE_SECONDS),
    ) -> None:
        self.platform = platform
        self.jobs = {job.name: job for job in jobs}
        self.clock = clock
        self.report = report
        self.starting_deadline = starting_deadline
        self.active_deadline = active_deadline
        now = clock()
        # Checked here, so a bad schedule stops `make run` at start, naming the job.
        self.next_run = {job.name: _next(job, now) for job in jobs}
        self.running: dict[str, _Run] = {}
        # Each finished run: (job, exit status).
        self.finished: list[tuple[str, int]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime) -> list[str]:
        """One round at `now`; the jobs it started."""
        self._reap(now)
        started = []
        for name, due in sorted(self.next_run.items(), key=lambda item: item[1]):
            if due > now:
                continue
            job = self.jobs[name]
            self.next_run[name] = _next(job, now)
            if now - due > self.starting_deadline:
                self.report(f"switchyard: job {name}: missed its {due:%H:%M} run; skipped")
            elif name in self.running:
                self.report(
                    f"switchyard: job {name}: the previous run is still going; "
                    f"this one is skipped (Forbid)"
                )
            elif self._launch(job, now):
                started.append(name)
        return started

    def _launch(self, job: ScheduledJob, now: datetime) -> bool:
        process = self.platform.launch(job.component, unless=self._stopping)
        if process is None:
            return False
        self.running[job.name] = _Run(process, now)
        self.report(f"switchyard: job {job.name} started ({job.schedule} UTC)")
        return True

    def _reap(self, now: datetime) -> None:
        for name, run in list(self.running.items()):
            status = run.process.poll()
            if status is None:
                if now - run.started > self.active_deadline:
                    self.report(f"switchyard: job {name} overran its deadline; stopping it")
                    run.process.send_signal(signal.SIGTERM)
                continue
            del self.running[name]
            self.platform.reap(name, run.process)
            self.finished.append((name, status))
            outcome = "done" if status == 0 else f"FAILED (exit {status})"
            following = self.next_run[name]
            self.report(f"switchyard: job {name} {outcome}; next run {following:%H:%M} UTC")

    def wait_finished(self, timeout: float) -> bool:
        """Wait (real time) until no run is going; False if one still is."""
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            self._reap(self.clock())
            time.sleep(0.05)
        return not self.running

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.tick(self.clock())
            # Wake for the next run, or within a second to reap a finished one.
            self._stopping.wait(1.0)

    def stop(self, grace: float = 10.0) -> None:
        """No new run; the runs still going get SIGTERM and `grace` seconds."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for name in list(self.running):
            self.platform.stop_component(name, grace)
        self.running.clear()

    def status_lines(self) -> str:
        width = max(map(len, self.next_run), default=0) + 2
        return "".join(
            f"    {name:<{width}}{self.jobs[name].schedule:<14}next {due:%Y-%m-%d %H:%M} UTC\n"
            for name, due in self.next_run.items()
        )


def _next(job: ScheduledJob, after: datetime) -> datetime:
    """The first time after `after` that `job`'s schedule names."""
    try:
        return next(CronSim(job.schedule, after))
    except CronSimError as exc:
        raise ValueError(f"job {job.name}: bad schedule {job.schedule!r}: {exc}") from exc
