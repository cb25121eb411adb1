"""The domain and the service layer name no grpc, SQLAlchemy or redis in their
imports: those belong to the entry points and the adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "payment_service"
FORBIDDEN = {"grpc", "sqlalchemy", "redis"}
LAYERS = sorted([*PACKAGE.glob("domain/*.py"), *PACKAGE.glob("service_layer/*.py")])


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_layers_are_found():
    assert {path.parent.name for path in LAYERS} == {"domain", "service_layer"}


@pytest.mark.parametrize("path", LAYERS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_driver_imports(path):
    heavy = {name for name in _imported(path) if name.split(".")[0] in FORBIDDEN}
    assert not heavy, f"{path.name} imports {sorted(heavy)}"
