"""`make observe`: a real Prometheus (the Debian package's binary) scraping
the local platform, with the alert rules of the cluster.

One source of rules: the groups of k8s/overlays/prod/monitoring/prometheusrule.yaml,
written unchanged to the local rules file. Only a caller that names an alert in
`for_overrides` gets another `for:` for it (the live alert test, to stay short);
every other character of the rules is the cluster's.

Targets are what the launcher started, on the ports it gave them: the gateway
and each service on their metrics port, each worker and relay on its liveness
port (/metrics there, as the PodMonitor scrapes it in k8s). Every target gets
the label namespace="switchyard", which the rules select on and which the
Prometheus operator sets in the cluster.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from switchyard_dev.launcher import WORKER_SERVICES, PlatformConfig

ROOT = Path(__file__).resolve().parents[4]
PROMETHEUS_RULE = ROOT / "k8s" / "overlays" / "prod" / "monitoring" / "prometheusrule.yaml"
NAMESPACE = "switchyard"
PROMETHEUS_PORT = 9090
STARTUP_SECONDS = 30.0


@dataclass(frozen=True)
class Target:
    job: str
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def scrape_targets(config: PlatformConfig, running: Collection[str]) -> list[Target]:
    """A target per running process that serves /metrics."""
    targets = [
        Target(name, port)
        for name, port in config.metrics_ports.items()
        if port and name in running and name not in WORKER_SERVICES
    ]
    targets += [
        Target(name, port)
        for name, port in config.liveness_ports.items()
        if port and name in running
    ]
    return targets


def rule_groups(for_overrides: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The PrometheusRule's groups; `for_overrides` (alert -> duration) replaces
    the `for:` of the alerts it names, and only that."""
    groups: list[dict[str, Any]] = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"]
    groups = copy.deepcopy(groups)
    overrides = dict(for_overrides or {})
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") in overrides:
                rule["for"] = overrides.pop(rule["alert"])
    if overrides:
        raise ValueError(f"no such alert to override: {sorted(overrides)}")
    return groups


def prometheus_config(
    targets: list[Target], rules_file: Path, scrape_interval: str, evaluation_interval: str
) -> dict[str, Any]:
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {
                "job_name": target.job,
                "static_configs": [
                    {"targets": [target.address], "labels": {"namespace": NAMESPACE}}
                ],
            }
            for target in targets
        ],
    }


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin")


class Prometheus:
    """One Prometheus process on `port` (loopback), its data in a temporary folder."""

    def __init__(
        self,
        binary: str,
        targets: list[Target],
        port: int = PROMETHEUS_PORT,
        *,
        scrape_interval: str = "5s",
        evaluation_interval: str = "5s",
        for_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.port = port
        self.targets = targets
        self.folder = Path(tempfile.mkdtemp(prefix="switchyard-prometheus-"))
        self.rules_file = self.folder / "switchyard.rules.yaml"
        self.rules_file.write_text(yaml.safe_dump({"groups": rule_groups(for_overrides)}))
        self.config_file = self.folder / "prometheus.yml"
        config = prometheus_config(targets, self.rules_file, scrape_interval, evaluation_interval)
        self.config_file.write_text(yaml.safe_dump(config))
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "prometheus.log"

    def start(self, timeout: float = STARTUP_SECONDS) -> Prometheus:
        self._log = self.log.open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - our binary, our arguments
            [
                self.binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop(keep_folder=True)
                raise RuntimeError(f"prometheus did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:  # noqa: S310 - loopback http
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str) -> Any:
        """The `data` of a GET on Prometheus' HTTP API (path after /api/v1/)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=5) as response:  # noqa: S310 - loopback http
            return json.load(response)["data"]

    def alerts(self) -> list[dict[str, Any]]:
        """Every pending or firing alert: labels, state, activeAt, value."""
        return list(self.api("alerts")["alerts"])

    def stop(self, *, keep_folder: bool = False) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
        if not keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
