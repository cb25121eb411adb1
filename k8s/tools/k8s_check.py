"""`make k8s-check`: the offline checks of the Kubernetes manifests and the Dockerfiles.

Runs with the tools virtualenv (.tools/k8s-venv, from k8s/tools/requirements.txt):

1. `kubectl kustomize` renders every overlay (k8s/overlays/*);
2. every rendered object validates against the Kubernetes schemas of
   KUBERNETES_VERSION with `kubernetes-validate --strict`; custom resources
   (Prometheus operator, KEDA) have no schema there and are listed as skipped;
3. `promtool check rules` on every PrometheusRule's groups, and `promtool test
   rules` on the unit tests of the prod rules (RULE_TESTS: a firing and a
   silent case per rule);
4. `checkov --skip-download` over the rendered overlays and the Dockerfiles:
   zero failed checks (skips carry their reason at the object);
5. `hadolint` on every Dockerfile named in skaffold.yaml.

The properties of the workloads themselves are asserted by tests/deploy (pytest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.name for p in (ROOT / "k8s" / "overlays").iterdir() if p.is_dir())
# A current release: kubernetes-validate ships schemas for 1.25 to 1.37.
KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "1.34.0")
# Custom resources: their CRDs are not part of the Kubernetes schemas. They are
# checked by promtool (PrometheusRule) and by tests/deploy (selectors, targets).
SKIPPED_KINDS = {
    "ServiceMonitor": "Prometheus operator CRD",
    "PodMonitor": "Prometheus operator CRD",
    "PrometheusRule": "Prometheus operator CRD (its rules: promtool check rules)",
    "ScaledObject": "KEDA CRD",
    "TriggerAuthentication": "KEDA CRD",
}
BIN = Path(sys.executable).parent
# promtool unit tests of PrometheusRule/switchyard; each names `rules.yaml`,
# which check_rules writes next to a copy of it from the rendered groups.
RULE_TESTS = ROOT / "k8s" / "overlays" / "prod" / "monitoring" / "tests"


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    # Our own tools (resolved paths) with arguments we build: no untrusted input.
    return subprocess.run(argv, check=False, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]  # noqa: S603


def fail(step: str, output: str) -> None:
    print(f"k8s-check: {step} FAILED\n{output}", file=sys.stderr)
    raise SystemExit(1)


def need(tool: str, apt_package: str | None = None) -> str:
    found = shutil.which(tool)
    if found is None and apt_package and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"k8s-check: installing {apt_package} (for {tool})")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607 - apt-get from PATH, as root
        subprocess.run(  # noqa: S603
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", apt_package],  # noqa: S607
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which(tool)
    if found is None:
        fail(
            "set-up",
            f"{tool} not found" + (f" (Debian package {apt_package})" if apt_package else ""),
        )
    return str(found)


def dockerfiles() -> list[Path]:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    # Each once: the services' images share one template (services/Dockerfile).
    paths = [
        ROOT / artifact.get("context", ".") / artifact["docker"]["dockerfile"]
        for artifact in config["build"]["artifacts"]
    ]
    return list(dict.fromkeys(paths))


def render(kubectl: str, out: Path) -> dict[str, list[dict[str, object]]]:
    rendered = {}
    for overlay in OVERLAYS:
        result = run([kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)])
        if result.returncode != 0:
            fail(f"kubectl kustomize k8s/overlays/{overlay}", result.stderr)
        (out / f"{overlay}.yaml").write_text(result.stdout)
        rendered[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        print(f"rendered   k8s/overlays/{overlay}: {len(rendered[overlay])} objects")
    return rendered


def validate(rendered: dict[str, list[dict[str, object]]], out: Path) -> None:
    for overlay, docs in rendered.items():
        folder = out / f"{overlay}-objects"
        folder.mkdir()
        files, skipped = [], []
        for index, doc in enumerate(docs):
            kind = str(doc["kind"])
            name = f"{kind}/{doc['metadata']['name']}"  # type: ignore[index]
            if kind in SKIPPED_KINDS:
                skipped.append(f"{name} ({SKIPPED_KINDS[kind]})")
                continue
            path = folder / f"{index:03d}-{kind}.yaml"
            path.write_text(yaml.safe_dump(doc))
            files.append(str(path))
        result = run(
            [
                str(BIN / "kubernetes-validate"),
                "--strict",
                "--quiet",
                "-k",
                KUBERNETES_VERSION,
                *files,
            ]
        )
        if result.returncode != 0 or "ERROR" in result.stdout:
            fail(f"kubernetes-validate {overlay}", result.stdout + result.stderr)
        print(
            f"validated  {overlay}: {len(files)} objects against Kubernetes {KUBERNETES_VERSION} "
            f"(--strict); skipped {len(skipped)} custom resources: {', '.join(skipped) or 'none'}"
        )


def check_rules(rendered: dict[str, list[dict[str, object]]], out: Path) -> None:
    promtool = need("promtool", "prometheus")
    for overlay, docs in rendered.items():
        for doc in docs:
            if doc["kind"] != "PrometheusRule":
                continue
            name = doc["metadata"]["name"]  # type: ignore[index]
            path = out / f"{overlay}-{name}.rules.yaml"
            path.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}))  # type: ignore[index]
            result = run([promtool, "check", "rules", str(path)])
            if result.returncode != 0:
                fail(f"promtool check rules ({overlay} {name})", result.stdout + result.stderr)
            verdict = result.stdout.strip().splitlines()[-1].strip()
            print(f"promtool   {overlay} PrometheusRule/{name}: {verdict}")
            if overlay == "prod" and name == "switchyard":
                test_rules(promtool, path, out)


def test_rules(promtool: str, rules: Path, out: Path) -> None:
    folder = out / "rule-tests"
    folder.mkdir()
    shutil.copy(rules, folder / "rules.yaml")
    tests = sorted(RULE_TESTS.glob("*.yaml"))
    if not tests:
        fail("promtool test rules", f"no tests in {RULE_TESTS}")
    for test in tests:
        shutil.copy(test, folder / test.name)
    result = run([promtool, "test", "rules", *(str(folder / t.name) for t in tests)])
    if result.returncode != 0:
        fail("promtool test rules", result.stdout + result.stderr)
    print(f"promtool   test rules: {len(tests)} file(s) passed")


def checkov(out: Path, files: list[Path]) -> None:
    checkov_bin = str(BIN / "checkov")
    common = ["--skip-download", "--quiet", "--compact", "--output", "cli"]
    scans = [
        ("rendered overlays", ["--framework", "kubernetes", "-d", str(out / "overlays")]),
        (
            "Dockerfiles",
            ["--framework", "dockerfile", *(arg for f in files for arg in ("-f", str(f)))],
        ),
    ]
    for label, args in scans:
        result = run([checkov_bin, *common, *args], env={**os.environ, "LOG_LEVEL": "WARNING"})
        summary = [line for line in result.stdout.splitlines() if "Passed checks" in line]
        if result.returncode != 0 or not summary:
            fail(f"checkov ({label})", result.stdout + result.stderr)
        print(f"checkov    {label}: {'; '.join(s.strip() for s in summary)}")


def hadolint(files: list[Path]) -> None:
    result = run([str(BIN / "hadolint"), *map(str, files)])
    if result.returncode != 0:
        fail("hadolint", result.stdout + result.stderr)
    print(f"hadolint   {len(files)} Dockerfiles: clean")


def main() -> int:
    kubectl = need("kubectl")
    files = dockerfiles()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail("skaffold.yaml", f"Dockerfiles named by skaffold.yaml are missing: {missing}")
    with tempfile.TemporaryDirectory(prefix="k8s-check-") as tmp:
        out = Path(tmp)
        (out / "overlays").mkdir()
        rendered = render(kubectl, out / "overlays")
        validate(rendered, out)
        check_rules(rendered, out)
        checkov(out, files)
        hadolint(files)
    print("k8s-check: all checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
