"""The inner layers of every service stay plain Python, at run time too.

`make lint` checks the imports statically (import-linter, contracts in the
root pyproject.toml); these tests import each service's domain and service
layer (every module in them) in a fresh interpreter and look at
`sys.modules`, which also catches what a static graph cannot: a heavy name
taken lazily from `switchyard_kit`. They also keep the contracts in step
with services/: a new service gets its contract or this fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["grpc", "sqlalchemy", "redis", "alembic", "opentelemetry"]
SERVICES = sorted(path.name for path in ROOT.glob("services/*/src/*_service"))
INNER = [f"{service}.{layer}" for service in SERVICES for layer in ("domain", "service_layer")]
LAYERS = ["entrypoints", "adapters", "service_layer", "domain"]

# Imports the package and every module in it, then reports what got loaded.
PROBE = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
package = importlib.import_module(sys.argv[1])
for module in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f"{package.__name__}.{module.name}")
loaded = set(sys.modules) - before
print(json.dumps({"top": sorted({name.split(".")[0] for name in loaded})}))
"""


def _loaded_packages(package: str) -> set[str]:
    """The top-level packages that importing `package` (all its modules) loads."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, package],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(result.stdout)["top"])


def test_every_service_is_found() -> None:
    assert {"auth_service", "profile_service", "payment_service", "recommendation_service"} <= set(
        SERVICES
    )


@pytest.mark.parametrize("package", INNER)
def test_an_inner_layer_loads_nothing_heavy(package: str) -> None:
    assert not set(HEAVY) & _loaded_packages(package)


def test_the_probe_sees_a_heavy_import() -> None:
    # The same probe on an adapter package: it does report SQLAlchemy when loaded.
    assert "sqlalchemy" in _loaded_packages("profile_service.adapters")


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert set(SERVICES) <= set(config["root_packages"])
    assert "switchyard_kit" in config["root_packages"]  # chains through the kit count
    contracts: list[dict[str, Any]] = config["contracts"]
    return contracts


def test_import_contracts_cover_every_inner_layer() -> None:
    forbidden: dict[str, set[str]] = {}
    for contract in _contracts():
        if contract["type"] == "forbidden":
            for source in contract["source_modules"]:
                forbidden.setdefault(source, set()).update(contract["forbidden_modules"])
    for package in INNER:
        assert set(HEAVY) <= forbidden.get(package, set()), package


def test_import_contracts_layer_every_service() -> None:
    layered = {
        container: contract["layers"]
        for contract in _contracts()
        if contract["type"] == "layers"
        for container in contract["containers"]
    }
    for service in SERVICES:
        assert layered.get(service) == LAYERS, service


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_skeleton(service: str) -> None:
    # services/README.md: the same module at the same path in every service.
    package = next(ROOT.glob(f"services/*/src/{service}"))
    for module in [
        "__main__.py",
        "config.py",
        "entrypoints/app.py",
        "entrypoints/grpc_servicer.py",
        "service_layer/handlers.py",
        "service_layer/ports.py",
        "adapters/tables.py",
        "adapters/repository.py",
        "adapters/unit_of_work.py",
        "migrations/env.py",
    ]:
        assert (package / module).is_file(), f"{service}/{module}"
    assert not (package / "service_layer" / "unit_of_work.py").exists()
