"""The SKU rule shared by payment (its API) and recommendation (its consumer)."""

from __future__ import annotations

import pytest
from switchyard_kit.sku import SKU_MAX_LENGTH, sku_problem


@pytest.mark.parametrize("value", ["a", "SKU-1", "tea.earl_grey-250g", "9", "x" * SKU_MAX_LENGTH])
def test_valid_skus(value: str) -> None:
    assert sku_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "<svg onload=alert(1)>",
        "sku\n",  # a `$` anchor would accept this one: the match is whole
        "sku 1",
        "-leading-dash",
        ".hidden",
        "x" * (SKU_MAX_LENGTH + 1),
        "nul\x00",
        "bidi\u202e",
        "ünïcode",
        "\uff11\uff12\uff13",  # full-width digits are not ASCII digits
    ],
)
def test_invalid_skus(value: str) -> None:
    assert sku_problem(value) is not None
