"""A representative profile test again, with the database behind a real
PgBouncer in the prod overlay's transaction pooling (switchyard_dev.pgbouncer):
20 concurrent creates of one profile make one row. Payment runs whole suites
through it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from profile_service.entrypoints.app import MIGRATIONS_DIR

# Collected here too: the same test, on this module's database_url.
from .test_profile_api import test_concurrent_creates_make_one_row  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(create_pgbouncer_database: Callable[[str, Path], str]) -> str:
    return create_pgbouncer_database("profile", MIGRATIONS_DIR)
