"""The `make run` launcher and the pytest fixtures (switchyard_dev) are
development tooling: no image's package depends on them, directly or through
another package, and no Dockerfile installs them."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from deploy.conftest import dockerfile_text

ROOT = Path(__file__).resolve().parents[2]
DEV_PACKAGE = "switchyard-dev"


def _image_packages() -> list[object]:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    found = []
    for artifact in config["build"]["artifacts"]:
        text = dockerfile_text(artifact)
        package = re.search(r'--package "?([^\s"]+)', text)
        assert package, artifact["image"]
        found.append(pytest.param(text, package.group(1), id=package.group(1)))
    return found


def _closure(package: str) -> set[str]:
    """Every package uv.lock installs for `package` without its dev groups."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    requires = {p["name"]: {d["name"] for d in p.get("dependencies", [])} for p in lock["package"]}
    seen: set[str] = set()
    todo = [package]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(requires.get(name, ()))
    return seen


@pytest.mark.parametrize(("dockerfile", "package"), _image_packages())
def test_no_image_installs_the_launcher(dockerfile: str, package: str) -> None:
    closure = _closure(package)
    assert "switchyard-kit" in closure  # the walk does reach the workspace packages
    assert DEV_PACKAGE not in closure
    assert "pytest" not in closure  # the fixtures' plugin host stays out too
    assert "libs/dev" not in dockerfile


def test_the_launcher_is_a_dev_dependency_of_the_root_only() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert DEV_PACKAGE in root["dependency-groups"]["dev"]
    assert DEV_PACKAGE not in root["project"]["dependencies"]
    for pyproject in ROOT.glob("*/**/pyproject.toml"):
        if ".venv" in pyproject.parts or pyproject.parent == ROOT / "libs" / "dev":
            continue
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        assert DEV_PACKAGE not in project.get("dependencies", []), pyproject
    # The kit's wheel holds the kit alone, not the dev package beside it.
    kit = tomllib.loads((ROOT / "libs" / "pyproject.toml").read_text())
    assert kit["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/switchyard_kit"]
    assert not (ROOT / "libs" / "src" / "switchyard_kit" / "launcher.py").exists()
    assert not (ROOT / "libs" / "src" / "switchyard_kit" / "testing.py").exists()
    assert "optional-dependencies" not in kit["project"]  # no `testing` extra left behind


def test_the_test_fixtures_are_registered_from_the_dev_package() -> None:
    conftest = ast.parse((ROOT / "conftest.py").read_text())
    [plugins] = [
        ast.literal_eval(node.value)
        for node in conftest.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["pytest_plugins"]
    ]
    assert {
        "switchyard_dev.testing",
        "switchyard_dev.pgbouncer",
        "switchyard_dev.replication",
    } <= set(plugins)
    for plugin in plugins:
        package, module = plugin.split(".")
        assert package == "switchyard_dev", plugin
        assert (ROOT / "libs" / "dev" / "src" / package / f"{module}.py").exists(), plugin
