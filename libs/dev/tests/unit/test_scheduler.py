"""The `make run` scheduler on a fake clock: runs start when their schedule
comes due and not before, a run still going skips the next (Forbid), a run
too late is skipped, an overrun is stopped; and it schedules the registry's
jobs, those needing Redis only with REDIS_URL."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from switchyard.services import load_services
from switchyard_dev.launcher import Component, Platform, PlatformConfig
from switchyard_dev.scheduler import ScheduledJob, Scheduler, scheduled_jobs

T0 = datetime(2026, 11, 30, 0, 0, 30, tzinfo=UTC)


def job(name: str, schedule: str, seconds: float = 0.0, status: int = 0) -> ScheduledJob:
    code = f"import sys, time; time.sleep({seconds}); sys.exit({status})"
    return ScheduledJob(Component(name=name, argv=[sys.executable, "-c", code], env={}), schedule)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def platform():
    platform = Platform([], output=None)
    yield platform
    platform.stop(grace=1)


def scheduler(platform: Platform, *jobs: ScheduledJob, clock: Clock) -> Scheduler:
    return Scheduler(platform, jobs, clock=clock, report=lambda line: None)


def test_a_run_starts_when_due_and_not_before(platform) -> None:
    clock = Clock()
    every_hour = scheduler(platform, job("a-hourly", "17 * * * *"), clock=clock)
    assert every_hour.next_run == {"a-hourly": datetime(2026, 11, 30, 0, 17, tzinfo=UTC)}
    assert every_hour.tick(T0 + timedelta(minutes=16)) == []
    assert every_hour.tick(datetime(2026, 11, 30, 0, 17, 5, tzinfo=UTC)) == ["a-hourly"]
    assert every_hour.wait_finished(timeout=30)
    assert every_hour.finished == [("a-hourly", 0)]
    assert every_hour.next_run["a-hourly"] == datetime(2026, 11, 30, 1, 17, tzinfo=UTC)
    # Nothing more until the next hour.
    assert every_hour.tick(datetime(2026, 11, 30, 0, 59, tzinfo=UTC)) == []


def test_a_run_still_going_skips_the_next_one(platform) -> None:
    clock = Clock()
    lines: list[str] = []
    slow = Scheduler(
        platform, [job("slow", "* * * * *", seconds=30)], clock=clock, report=lines.append
    )
    assert slow.tick(T0 + timedelta(seconds=30)) == ["slow"]
    assert slow.tick(T0 + timedelta(seconds=90)) == []
    assert any("skipped (Forbid)" in line for line in lines)
    slow.stop(grace=1)


def test_a_run_missed_by_more_than_the_starting_deadline_is_skipped(platform) -> None:
    clock = Clock()
    lines: list[str] = []
    daily = Scheduler(platform, [job("daily", "0 3 * * *")], clock=clock, report=lines.append)
    # The laptop slept through 03:00 and wakes at 05:00: no catch-up run.
    assert daily.tick(datetime(2026, 11, 30, 5, 0, tzinfo=UTC)) == []
    assert "missed its 03:00 run" in lines[0]
    assert daily.next_run["daily"] == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_a_run_past_its_active_deadline_is_stopped(platform) -> None:
    clock = Clock()
    hung = Scheduler(
        platform,
        [job("hung", "* * * * *", seconds=60)],
        clock=clock,
        report=lambda line: None,
        active_deadline=timedelta(minutes=5),
    )
    hung.tick(T0 + timedelta(seconds=30))
    hung.tick(T0 + timedelta(minutes=6))  # overran: SIGTERM
    assert hung.wait_finished(timeout=30)
    assert hung.finished[0][0] == "hung"
    assert hung.finished[0][1] != 0


def test_a_failed_run_is_reported(platform) -> None:
    lines: list[str] = []
    failing = Scheduler(
        platform, [job("bad", "* * * * *", status=3)], clock=Clock(), report=lines.append
    )
    failing.tick(T0 + timedelta(seconds=30))
    assert failing.wait_finished(timeout=30)
    assert failing.finished == [("bad", 3)]
    assert any("bad FAILED (exit 3)" in line for line in lines)


def test_a_bad_schedule_stops_the_scheduler_at_start_naming_the_job(platform) -> None:
    with pytest.raises(ValueError, match="job broken: bad schedule"):
        scheduler(platform, job("broken", "61 * * * *"), clock=Clock())


def test_the_registry_s_jobs_are_scheduled_redis_ones_only_with_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = {j.workload: j for s in load_services() for j in s.jobs}
    config = PlatformConfig(ports={}, data_dir=tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    without = {j.name: j for j in scheduled_jobs(config)}
    assert set(without) == {name for name, j in registry.items() if not j.needs_redis}
    config.extra_env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    with_redis = {j.name: j for j in scheduled_jobs(config)}
    assert set(with_redis) == set(registry)
    for name, scheduled in with_redis.items():
        # The same schedule as the CronJob, the same command as its container.
        assert scheduled.schedule == registry[name].schedule
        service = registry[name].service
        assert list(scheduled.component.argv[1:]) == [
            "-m",
            f"{service}_service",
            registry[name].command,
        ]


def test_the_banner_lists_each_job_with_its_next_run(platform) -> None:
    jobs = scheduler(platform, job("x-daily", "23 3 * * *"), clock=Clock())
    assert "x-daily" in jobs.status_lines()
    assert "next 2026-11-30 03:23 UTC" in jobs.status_lines()


def test_the_banner_keeps_the_schedules_in_one_column_whatever_the_names(platform) -> None:
    long_name = "recommendation-cleanup-processed-events"
    jobs = scheduler(
        platform, job("x-daily", "23 3 * * *"), job(long_name, "33 3 * * *"), clock=Clock()
    )
    lines = jobs.status_lines().splitlines()
    assert len(lines) == 2
    columns = {line.index(" 3 * * *") for line in lines}
    assert len(columns) == 1  # the schedule starts at the same place on every line
    assert f"{long_name}  33 3 * * *" in jobs.status_lines()  # a long name keeps a gap
