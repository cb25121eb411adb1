"""The heartbeat and its HTTP probe: 200 only while the loop's last beat is recent."""

from __future__ import annotations

import itertools
import threading
import time
import urllib.error
import urllib.request

import pytest
from switchyard_dev.ports import free_port as _free_port
from switchyard_kit import LIVENESS_PATH, Heartbeat, start_liveness
from switchyard_kit._liveness import wait_beating


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _status(port: int, path: str = LIVENESS_PATH) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_heartbeat_is_alive_only_within_its_max_age():
    clock = FakeClock()
    heartbeat = Heartbeat(max_age_seconds=5, clock=clock)
    assert heartbeat.age() is None
    assert not heartbeat.alive()  # no turn yet: a startup probe keeps waiting
    heartbeat.beat()
    clock.now += 5
    assert heartbeat.alive()
    clock.now += 0.1
    assert not heartbeat.alive()
    heartbeat.beat()
    assert heartbeat.alive()


def test_heartbeat_refuses_a_non_positive_max_age():
    with pytest.raises(ValueError, match="max_age_seconds"):
        Heartbeat(max_age_seconds=0)


def test_probe_answers_503_before_the_first_beat_200_after_503_once_stale():
    port = _free_port()
    heartbeat = start_liveness(port, max_age_seconds=0.3)
    assert _status(port) == 503
    heartbeat.beat()
    assert _status(port) == 200
    time.sleep(0.5)
    # The probe thread is alive and answering, but the loop has not turned.
    assert _status(port) == 503
    assert _status(port, "/other") == 404


def test_port_zero_serves_nothing():
    heartbeat = start_liveness(0)
    heartbeat.beat()
    assert heartbeat.alive()


def test_waiting_beats_every_second_and_stops_early():
    clock_beats: list[float] = []

    class Recording(Heartbeat):
        def beat(self) -> None:
            clock_beats.append(time.monotonic())
            super().beat()

    heartbeat = Recording(max_age_seconds=2)
    stop = threading.Event()
    started = time.monotonic()
    wait_beating(stop, 2.2, heartbeat)
    assert 2.1 < time.monotonic() - started < 3.0
    assert len(clock_beats) >= 3
    assert max(b - a for a, b in itertools.pairwise(clock_beats)) < 1.2
    stop.set()
    started = time.monotonic()
    wait_beating(stop, 10, heartbeat)
    assert time.monotonic() - started < 0.1


def test_liveness_port_serves_metrics_with_the_heartbeat_age():
    # Workers and relays are scraped on this port: a loop that stopped turning
    # shows as a growing loop_heartbeat_age_seconds (alert SwitchyardLoopStuck).
    port = _free_port()
    heartbeat = start_liveness(port, max_age_seconds=7)
    heartbeat.beat()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        body = response.read().decode()
    samples = {
        line.split()[0]: float(line.split()[1])
        for line in body.splitlines()
        if line.startswith("loop_heartbeat_")
    }
    assert samples["loop_heartbeat_max_age_seconds"] == 7
    assert 0 <= samples["loop_heartbeat_age_seconds"] < 7
