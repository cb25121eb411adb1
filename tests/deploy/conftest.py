"""Fixtures of the deployment tests: the rendered kustomize overlays and skaffold.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is needed to render the overlays (kubectl kustomize)")
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


_CACHE: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> list[dict[str, Any]]:
    if overlay not in _CACHE:
        _CACHE[overlay] = render(overlay)
    return _CACHE[overlay]


@pytest.fixture(scope="session")
def skaffold() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "skaffold.yaml").read_text()))


def dockerfile_text(artifact: dict[str, Any]) -> str:
    """The Dockerfile of a skaffold artifact with its build arguments filled in
    (services/Dockerfile is one template for every service: SERVICE)."""
    text = (ROOT / artifact["context"] / artifact["docker"]["dockerfile"]).read_text()
    for name, value in artifact["docker"].get("buildArgs", {}).items():
        text = text.replace(f"${{{name}}}", str(value))
    return text
