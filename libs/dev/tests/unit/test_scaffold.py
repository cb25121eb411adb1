"""switchyard_dev.scaffold on a copy of the files it edits (the slow end-to-end
proof, make new-service in a whole copy of the repository, is tests/scaffold)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from switchyard.services import parse_services
from switchyard_dev import scaffold

EDITED = (scaffold.REGISTRY, scaffold.PYPROJECT, *scaffold.OVERLAYS)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for relative in EDITED:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(scaffold.ROOT / relative, tmp_path / relative)
    return tmp_path


def snapshot(root: Path) -> dict[Path, str]:
    return {relative: (root / relative).read_text() for relative in EDITED}


def test_plan_takes_free_ports() -> None:
    service = scaffold.plan("inventory")
    registered = parse_services((scaffold.ROOT / scaffold.REGISTRY).read_text())
    taken = {s.port for s in registered} | {s.metrics_port for s in registered}
    assert service.port not in taken
    assert service.metrics_port not in taken
    assert service.port > max(s.port for s in registered) - 1


@pytest.mark.parametrize("name", ["profile", "Inventory", "in-ventory", "x", "9lives", "me"])
def test_plan_refuses_bad_or_taken_names(name: str) -> None:
    with pytest.raises(scaffold.ScaffoldError):
        scaffold.plan(name)


def test_new_then_remove_restores_every_edited_file(root: Path) -> None:
    before = snapshot(root)
    service = scaffold.plan("inventory", root)
    files = scaffold.render(service, root)
    assert root / "services/inventory/src/inventory_service/entrypoints/app.py" in files
    assert all("{{" not in path.read_text() for path in files)
    scaffold.add_to_registry(service, root)
    scaffold.add_to_pyproject("inventory", root)
    scaffold.add_components("inventory", root)

    entry = parse_services((root / scaffold.REGISTRY).read_text())[-1]
    assert (entry.name, entry.port) == ("inventory", service.port)
    assert entry.grpc_service == "switchyard.inventory.v1.InventoryService"
    linter = tomllib.loads((root / scaffold.PYPROJECT).read_text())["tool"]["importlinter"]
    assert "inventory_service" in linter["root_packages"]
    assert {"inventory-inner-layers", "inventory-layers"} <= {c["id"] for c in linter["contracts"]}
    for overlay in scaffold.OVERLAYS:
        assert "  - inventory\n  # END added by `make new-service`" in (root / overlay).read_text()

    scaffold.remove_service("inventory", root)
    assert snapshot(root) == before
    assert not (root / "services" / "inventory").exists()
    assert not (root / "protos" / "switchyard" / "inventory").exists()


def test_remove_refuses_the_platforms_own_services(root: Path) -> None:
    with pytest.raises(scaffold.ScaffoldError):
        scaffold.remove_service("payment", root)
    with pytest.raises(scaffold.ScaffoldError):
        scaffold.remove_service("nosuchservice", root)
