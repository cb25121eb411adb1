"""The alert rules, live: the platform on PostgreSQL + Redis, a real Prometheus
(`make observe`'s, switchyard_dev.observe) scraping every process with the
cluster's rule groups, then a service is killed and a worker frozen; the
matching alert goes pending, then firing, on Prometheus' HTTP API within the
rule's `for:` plus a scrape and an evaluation.

Last, auth's database link is made to hang (a TCP proxy that holds every
byte for HUNG_SECONDS): auth-relay's loop blocks in a query while its process
still answers scrapes, and SwitchyardLoopStuck fires from its heartbeat age.

The only changes to the rules are explicit, in FOR_OVERRIDES: the `for:` of
SwitchyardTargetDown (3m in the cluster) and SwitchyardLoopStuck (1m), or the
test would take minutes; the expressions, labels and annotations are the
cluster's.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
from switchyard_dev.observe import Prometheus, prometheus_binary, scrape_targets
from switchyard_dev.ports import free_port

from faults.platform import FaultPlatform, record, start_fault_platform, wait_for

SCRAPE_SECONDS = 1
EVALUATION_SECONDS = 1
TARGET_DOWN_FOR_SECONDS = 5
# The 2 shared cores of CI stall processes now and then: a margin on top of
# the bound, so the test checks the mechanism, not the machine's load.
LOAD_MARGIN_SECONDS = 10
BOUND_SECONDS = TARGET_DOWN_FOR_SECONDS + SCRAPE_SECONDS + EVALUATION_SECONDS + LOAD_MARGIN_SECONDS
# auth-relay's liveness bound here (30 s in k8s, 10 s under make run); loose
# enough that a loaded CI machine never makes a healthy loop look stuck.
LIVENESS_MAX_AGE_SECONDS = 5
LOOP_STUCK_FOR_SECONDS = 3
LOOP_STUCK_BOUND_SECONDS = (
    LIVENESS_MAX_AGE_SECONDS
    + LOOP_STUCK_FOR_SECONDS
    + SCRAPE_SECONDS
    + EVALUATION_SECONDS
    + LOAD_MARGIN_SECONDS
)
# How long the hung database link holds each chunk: past the alert's bound.
HUNG_SECONDS = 30
FOR_OVERRIDES = {
    "SwitchyardTargetDown": f"{TARGET_DOWN_FOR_SECONDS}s",
    "SwitchyardLoopStuck": f"{LOOP_STUCK_FOR_SECONDS}s",
}


@pytest.fixture(scope="module")
def binary() -> str:
    found = prometheus_binary()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is needed (Debian package prometheus; .ci/run installs it)")
        pytest.skip("prometheus not installed")
    return found


@pytest.fixture(scope="module")
def observed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, binary: str
) -> Iterator[tuple[FaultPlatform, Prometheus]]:
    platform = start_fault_platform(
        tmp_path_factory.mktemp("observed"),
        request.getfixturevalue("create_postgres_database"),
        request.getfixturevalue("redis_url"),
        proxied_databases=("auth",),
        env={"AUTH_LIVENESS_MAX_AGE_SECONDS": str(LIVENESS_MAX_AGE_SECONDS)},
    )
    prometheus = Prometheus(
        binary,
        scrape_targets(platform.config, platform.platform.processes),
        free_port(),
        scrape_interval=f"{SCRAPE_SECONDS}s",
        evaluation_interval=f"{EVALUATION_SECONDS}s",
        for_overrides=FOR_OVERRIDES,
    )
    try:
        prometheus.start()
        yield platform, prometheus
    finally:
        prometheus.stop()
        platform.stop()


def _every_target_up(prometheus: Prometheus) -> bool:
    results = prometheus.api("query?query=up")["result"]
    jobs = {r["metric"]["job"]: r["value"][1] for r in results}
    return len(jobs) == len(prometheus.targets) and set(jobs.values()) == {"1"}


def _series(prometheus: Prometheus, query: str) -> list[dict[str, object]]:
    return list(prometheus.api(f"query?query={urllib.parse.quote(query)}")["result"])


def _state(prometheus: Prometheus, alert: str, job: str) -> str | None:
    for active in prometheus.alerts():
        labels = active["labels"]
        if labels["alertname"] == alert and labels.get("job") == job:
            return str(active["state"])
    return None


def _watch(
    prometheus: Prometheus,
    alert: str,
    job: str,
    fault: Callable[[], None],
    bound: float = BOUND_SECONDS,
) -> float:
    """Inject `fault`, then poll until `alert` for `job` fires; the seconds from
    the fault to firing. Fails unless it was seen pending first."""
    assert _state(prometheus, alert, job) is None, "already active before the fault"
    states: list[str] = []
    started = time.monotonic()
    fault()
    while time.monotonic() - started < bound + 30:
        state = _state(prometheus, alert, job)
        if state is not None and (not states or states[-1] != state):
            states.append(state)
        if state == "firing":
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    assert states == ["pending", "firing"], f"{alert} {job}: states seen {states}"
    return elapsed


def test_all_targets_are_scraped_and_nothing_fires_while_healthy(
    observed: tuple[FaultPlatform, Prometheus],
) -> None:
    _, prometheus = observed
    jobs = {target.job for target in prometheus.targets}
    # The gateway, every service, every worker and relay (on the liveness port).
    assert {"gateway", "auth", "profile", "payment", "recommendation"} <= jobs
    assert {"relay", "auth-relay", "profile-worker", "recommendation-worker"} <= jobs
    wait_for(lambda: _every_target_up(prometheus), timeout=30, interval=0.5)
    # What the worker and relay alerts read reaches Prometheus from the
    # liveness ports: each loop's heartbeat, auth's outbox backlog.
    for job in ("relay", "auth-relay", "profile-worker", "recommendation-worker"):
        wait_for(
            lambda job=job: _series(prometheus, f'loop_heartbeat_age_seconds{{job="{job}"}}'),
            timeout=15,
            interval=0.5,
        )
    wait_for(
        lambda: _series(prometheus, 'outbox_unsent_events{job="auth-relay", outbox="auth"}'),
        timeout=15,
        interval=0.5,
    )
    # A few evaluations on healthy processes: nothing of ours goes pending.
    time.sleep(3 * EVALUATION_SECONDS)
    assert [a["labels"]["alertname"] for a in prometheus.alerts()] == []


def test_killing_a_service_fires_target_down(observed: tuple[FaultPlatform, Prometheus]) -> None:
    platform, prometheus = observed
    wait_for(lambda: _every_target_up(prometheus), timeout=30, interval=0.5)
    elapsed = _watch(
        prometheus, "SwitchyardTargetDown", "profile", lambda: platform.kill("profile")
    )
    record("alert SwitchyardTargetDown firing after SIGKILL of profile", elapsed)
    assert elapsed <= BOUND_SECONDS


def test_stopping_a_worker_fires_target_down(observed: tuple[FaultPlatform, Prometheus]) -> None:
    platform, prometheus = observed
    worker = "recommendation-worker"
    try:
        elapsed = _watch(
            prometheus,
            "SwitchyardTargetDown",
            worker,
            lambda: platform.signal(worker, signal.SIGSTOP),
        )
    finally:
        platform.signal(worker, signal.SIGCONT)
    record(f"alert SwitchyardTargetDown firing after SIGSTOP of {worker}", elapsed)
    assert elapsed <= BOUND_SECONDS


def test_a_relay_loop_blocked_on_its_database_fires_loop_stuck(
    observed: tuple[FaultPlatform, Prometheus],
) -> None:
    platform, prometheus = observed
    proxy = platform.proxies["auth"]
    try:
        elapsed = _watch(
            prometheus,
            "SwitchyardLoopStuck",
            "auth-relay",
            lambda: setattr(proxy, "delay_seconds", HUNG_SECONDS),
            LOOP_STUCK_BOUND_SECONDS,
        )
        # Its process still answers: this is the loop, not a target down.
        assert _series(prometheus, 'up{job="auth-relay"} == 1')
    finally:
        proxy.delay_seconds = 0
    record("alert SwitchyardLoopStuck firing after auth's database link hung", elapsed)
    assert elapsed <= LOOP_STUCK_BOUND_SECONDS
