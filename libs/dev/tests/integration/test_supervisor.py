"""The supervisor on real (tiny) processes: a crash loop is reported loudly and
in the status, is still retried, and never touches the other processes."""

from __future__ import annotations

import sys
import time

from switchyard_dev.launcher import Component, Platform
from switchyard_dev.supervisor import RestartPolicy, Supervisor


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_crash_loop_is_reported_and_retried_while_the_others_keep_running():
    steady = Component("steady", [sys.executable, "-c", "import time; time.sleep(60)"], env={})
    # Alive long enough for the first start to pass, then exits with 3 every time.
    crashing = Component(
        "crashing",
        [sys.executable, "-c", "import time; time.sleep(1.0); raise SystemExit(3)"],
        env={},
    )
    platform = Platform([steady, crashing], output=None)
    platform.start(timeout=10)
    steady_pid = platform.processes["steady"].pid
    lines: list[str] = []
    policy = RestartPolicy(first_delay=0.05, max_delay=0.2, crash_loop_after=3, check_interval=0.05)
    supervisor = Supervisor(platform, policy, report=lines.append).start()
    try:
        _wait(lambda: len([r for r in supervisor.restarts if r.name == "crashing"]) >= 3)
        assert "CRASH LOOP" in supervisor.status()["crashing"]
        loud = [line for line in lines if "CRASH LOOP" in line]
        assert loud
        assert "crashing exited with code 3" in loud[0]
        assert "steady" in loud[0]  # the status of every process comes with it
        assert [r.returncode for r in supervisor.restarts] == [3] * len(supervisor.restarts)
        assert platform.processes["steady"].pid == steady_pid
        assert platform.processes["steady"].poll() is None
        assert supervisor.status()["steady"] == "up"
    finally:
        supervisor.stop(grace=5)
    assert platform.processes == {}


def test_stop_means_no_more_restarts():
    component = Component("short", [sys.executable, "-c", "import time; time.sleep(1.0)"], env={})
    platform = Platform([component], output=None)
    platform.start(timeout=10)
    supervisor = Supervisor(
        platform, RestartPolicy(first_delay=0.5, check_interval=0.05), report=lambda line: None
    ).start()
    _wait(lambda: len(supervisor.restarts) == 1)
    supervisor.stop(grace=5)  # within the 0.5 s backoff
    time.sleep(1.5)
    assert platform.processes == {}
