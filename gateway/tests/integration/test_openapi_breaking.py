"""The HTTP contract's breaking-change check (`make openapi-breaking`): the
committed spec against changed copies of itself, through the same script CI runs."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gateway.contract import SPEC_FILE

SCRIPT = Path(__file__).resolve().parents[2] / "openapi-diff" / "breaking.sh"
SPEC: dict[str, Any] = json.loads(SPEC_FILE.read_text())
SCHEMAS = "components", "schemas"


def breaks(after: dict[str, Any], tmp_path: Path) -> bool:
    """True when the check refuses `after` as a successor of the committed spec."""
    changed = tmp_path / "after.json"
    changed.write_text(json.dumps(after))
    result = subprocess.run(
        [str(SCRIPT), "--files", str(SPEC_FILE), str(changed)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 1


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec[SCHEMAS[0]][SCHEMAS[1]][f"switchyard.{name}"]


def test_the_same_contract_passes(tmp_path: Path) -> None:
    assert not breaks(SPEC, tmp_path)


def test_additions_pass(tmp_path: Path) -> None:
    after = copy.deepcopy(SPEC)
    wallet = schema(after, "payment.v1.Wallet")
    wallet["properties"]["nickname"] = {"type": "string"}
    top_up = schema(after, "payment.v1.TopUpWalletRequest")
    top_up["properties"]["note"] = {"type": "string", "maxLength": 100}
    after["paths"]["/v1/wallet/statements"] = {
        "get": copy.deepcopy(after["paths"]["/v1/wallet"]["get"])
    }
    after["paths"]["/v1/wallet/statements"]["get"]["operationId"] = "PaymentService_ListStatements"
    assert not breaks(after, tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        "remove an operation",
        "remove a response field",
        "require a new request field",
        "narrow a request enum",
    ],
)
def test_breaking_changes_fail(change: str, tmp_path: Path) -> None:
    after = copy.deepcopy(SPEC)
    if change == "remove an operation":
        del after["paths"]["/v1/recommendations"]
    elif change == "remove a response field":
        del schema(after, "payment.v1.Wallet")["properties"]["balances"]
    elif change == "require a new request field":
        top_up = schema(after, "payment.v1.TopUpWalletRequest")
        top_up["properties"]["note"] = {"type": "string"}
        top_up["required"] = [*top_up.get("required", []), "note"]
    else:
        currency = schema(after, "payment.v1.TopUpWalletRequest")["properties"]["currency"]
        currency["enum"].remove("EUR")
    assert breaks(after, tmp_path)
