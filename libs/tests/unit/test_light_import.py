"""`import switchyard_kit` stays light: the errors, the clock, `text` and `sku`
load without grpc, SQLAlchemy, redis, alembic or OpenTelemetry, and every
other public name still resolves (lazily) with its static type declared."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import switchyard_kit

HEAVY = ("grpc", "sqlalchemy", "redis", "alembic", "opentelemetry")
INIT = Path(switchyard_kit.__file__)


def _loaded_after(statement: str) -> list[str]:
    """Top-level packages from HEAVY that `statement` loads in a fresh interpreter."""
    probe = (
        f"import sys, json\n{statement}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_domain_safe_parts_import_without_heavy_packages() -> None:
    statement = (
        "from switchyard_kit import DomainError, FieldViolation, InvalidArgument, utc_now\n"
        "import switchyard_kit.text, switchyard_kit.sku"
    )
    assert _loaded_after(statement) == []


def test_a_heavy_name_loads_its_module_on_first_use() -> None:
    # The probe itself: it does see a heavy import when one happens.
    assert "sqlalchemy" in _loaded_after("from switchyard_kit import Database")


def test_every_public_name_resolves() -> None:
    for name in switchyard_kit.__all__:
        assert getattr(switchyard_kit, name) is not None, name
    assert set(switchyard_kit.__all__) <= set(dir(switchyard_kit))


def _imported_names(body: list[ast.stmt]) -> set[str]:
    return {
        alias.asname or alias.name
        for node in body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("switchyard_kit.")
        for alias in node.names
    }


def test_every_name_is_either_eager_or_declared_lazy() -> None:
    # A lazy name missing from the TYPE_CHECKING imports would type as Any
    # through __getattr__: mypy would stop checking its callers silently.
    tree = ast.parse(INIT.read_text())
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    eager = _imported_names(tree.body)
    lazy = set(switchyard_kit._LAZY)
    assert lazy == _imported_names(guarded.body)
    assert not eager & lazy
    assert eager | lazy == set(switchyard_kit.__all__)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = switchyard_kit.NoSuchThing


def test_utc_now_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = switchyard_kit.utc_now()
    assert now.tzinfo is UTC
    assert before <= now <= before + timedelta(seconds=5)
