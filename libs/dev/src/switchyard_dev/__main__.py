"""`python -m switchyard_dev` (`make run`): start the platform, keep it up, stop it on Ctrl-C.

`--observe` (`make observe`) also starts a Prometheus on PROMETHEUS_PORT (9090)
scraping every process, with the cluster's alert rules (switchyard_dev.observe).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from switchyard_dev.launcher import Platform, PlatformConfig, platform_components
from switchyard_dev.observe import PROMETHEUS_PORT, Prometheus, prometheus_binary, scrape_targets
from switchyard_dev.scheduler import Scheduler, scheduled_jobs
from switchyard_dev.supervisor import Supervisor


def _banner(config: PlatformConfig, supervisor: Supervisor, scheduler: Scheduler) -> str:
    gateway = f"http://127.0.0.1:{config.ports['gateway']}"
    metrics = {name: port for name, port in config.metrics_ports.items() if port}
    width = max(map(len, metrics), default=0) + 2
    return (
        "\nSwitchyard is running.\n"
        f"  API            {gateway}/v1/...\n"
        f"  docs           {gateway}/docs   (spec: {gateway}/openapi.json)\n"
        f"  metrics        (Prometheus, each process on a port of its own)\n"
        + "".join(
            f"                 {name:<{width}}http://127.0.0.1:{port}/metrics\n"
            for name, port in metrics.items()
        )
        + f"  health         {gateway}/healthz  {gateway}/readyz\n"
        + "".join(
            f"  liveness       {name:<22}http://127.0.0.1:{port}/livez\n"
            for name, port in config.liveness_ports.items()
            if port and name in supervisor.status()
        )
        + f"  data           {config.data_dir.resolve()}\n"
        "  processes      (a process that dies or hangs is restarted; the others keep serving)\n"
        + supervisor.status_lines()
        + "  jobs           (the k8s CronJobs' schedules, protos/switchyard/services.toml)\n"
        + scheduler.status_lines()
        + "Press Ctrl-C to stop.\n"
    )


def _start_prometheus(config: PlatformConfig, platform: Platform) -> Prometheus | None:
    binary = prometheus_binary()
    if binary is None:
        print("switchyard: prometheus not found (Debian package: prometheus)", file=sys.stderr)
        return None
    port = int(os.environ.get("PROMETHEUS_PORT", PROMETHEUS_PORT))
    targets = scrape_targets(config, platform.processes)
    prometheus = Prometheus(binary, targets, port).start()
    print(
        f"  prometheus     {prometheus.url}  (alerts: {prometheus.url}/alerts, "
        f"{len(targets)} targets, rules: {prometheus.rules_file})",
        flush=True,
    )
    return prometheus


def main(argv: list[str] | None = None) -> int:
    observe = "--observe" in (sys.argv[1:] if argv is None else argv)
    config = PlatformConfig.from_environment()
    platform = Platform(platform_components(config))
    supervisor = Supervisor(platform)
    scheduler = Scheduler(platform, scheduled_jobs(config))
    stop_requested = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        # Ctrl-C reaches every process of the terminal's group: none of the
        # exits that follow may be taken for a crash and restarted.
        supervisor.request_stop()
        stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.start()
    except (RuntimeError, TimeoutError) as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        platform.stop()
        return 1
    if stop_requested.is_set():
        platform.stop()
        return 0
    supervisor.start()
    scheduler.start()
    print(_banner(config, supervisor, scheduler), flush=True)
    prometheus = _start_prometheus(config, platform) if observe else None
    while not stop_requested.wait(0.5):
        pass
    print("\nswitchyard: stopping...", flush=True)
    if prometheus is not None:
        prometheus.stop()
    scheduler.stop()
    supervisor.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
