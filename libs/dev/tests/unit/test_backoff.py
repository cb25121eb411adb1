"""The supervisor's restart delays, on a fake clock: doubled per failure in a
row, capped, forgotten after a healthy window; a crash loop after N in a row."""

from __future__ import annotations

from switchyard_dev.supervisor import Backoff, RestartPolicy

POLICY = RestartPolicy(
    first_delay=0.5, max_delay=8.0, factor=2.0, reset_after=30.0, crash_loop_after=5
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _crash(backoff: Backoff, clock: FakeClock, ran_for: float = 1.0) -> float:
    backoff.started()
    clock.now += ran_for
    return backoff.failed()


def test_delays_double_per_failure_in_a_row_and_stop_at_the_cap():
    clock = FakeClock()
    backoff = Backoff(POLICY, clock)
    delays = [_crash(backoff, clock) for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_crash_loop_is_five_failures_in_a_row():
    clock = FakeClock()
    backoff = Backoff(POLICY, clock)
    for _ in range(4):
        _crash(backoff, clock)
        assert not backoff.crash_looping
    _crash(backoff, clock)
    assert backoff.crash_looping


def test_a_run_healthy_for_the_reset_window_forgets_earlier_failures():
    clock = FakeClock()
    backoff = Backoff(POLICY, clock)
    for _ in range(5):
        _crash(backoff, clock)
    assert backoff.crash_looping
    backoff.started()
    backoff.healthy()  # first passing check of this run
    clock.now += 30.0
    backoff.healthy()  # still healthy 30 s later: the crash loop is over
    assert not backoff.crash_looping
    clock.now += 100.0
    assert backoff.failed() == 0.5


def test_a_short_healthy_run_does_not_reset():
    clock = FakeClock()
    backoff = Backoff(POLICY, clock)
    for _ in range(3):
        _crash(backoff, clock)
    backoff.started()
    backoff.healthy()
    clock.now += 29.0
    backoff.healthy()
    assert backoff.failed() == 4.0  # the 4th failure in a row


def test_the_healthy_window_must_be_unbroken():
    clock = FakeClock()
    backoff = Backoff(POLICY, clock)
    _crash(backoff, clock)
    _crash(backoff, clock)
    backoff.started()
    backoff.healthy()
    clock.now += 20.0
    backoff.unhealthy()  # a failed check breaks the window
    clock.now += 1.0
    backoff.healthy()
    clock.now += 20.0
    backoff.healthy()
    assert backoff.failed() == 2.0
