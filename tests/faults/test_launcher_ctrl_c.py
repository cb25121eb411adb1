"""Ctrl-C on `make run` (`python -m switchyard_dev`) still drains and stops
everything: the supervisor takes none of the exits that follow for a crash,
the launcher exits 0 and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from e2e.harness import free_port
from switchyard_dev.launcher import DEFAULT_LIVENESS_PORTS, DEFAULT_METRICS_PORTS, SERVICES


def _children(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_stops_every_process_and_exits_0(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SWITCHYARD_DATA_DIR": str(tmp_path / "data"),
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST_KIB": "8192",
        "GATEWAY_WORKERS": "1",
        **{f"{name.upper()}_PORT": str(free_port()) for name in (*SERVICES, "gateway")},
        **{f"{name.upper().replace('-', '_')}_METRICS_PORT": "0" for name in DEFAULT_METRICS_PORTS},
        **{
            f"{name.upper().replace('-', '_')}_LIVENESS_PORT": str(free_port())
            for name in DEFAULT_LIVENESS_PORTS
        },
    }
    env.pop("REDIS_URL", None)
    for name in SERVICES:
        env.pop(f"{name.upper()}_DATABASE_URL", None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "switchyard_dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, as a terminal gives it: Ctrl-C reaches the group.
        start_new_session=True,
    )
    output: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            output.append(line)
            if "Switchyard is running." in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert running.wait(120), "".join(output[-50:])
        children = _children(launcher.pid)
        # 4 servers, 2 relays, the gateway (gunicorn master + worker) at least.
        assert len(children) >= 8, children
        os.killpg(launcher.pid, signal.SIGINT)
        assert launcher.wait(60) == 0, "".join(output[-50:])
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    reader.join(5)
    if launcher.stdout is not None:
        launcher.stdout.close()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "processes left behind"
    text = "".join(output)
    assert "switchyard: stopping..." in text
    assert "restarting" not in text, text[-3000:]
