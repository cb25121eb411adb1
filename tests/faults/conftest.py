"""Fault-injection tests: real processes, real PostgreSQL and Redis, loopback only."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
