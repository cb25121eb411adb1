"""A representative auth test again, with the database behind a real PgBouncer
in the prod overlay's transaction pooling (switchyard_dev.pgbouncer): refresh
rotation, two concurrent refreshes of one token and reuse detection, the
row-locking path of sessions. Payment runs whole suites through it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from auth_service.entrypoints.app import MIGRATIONS_DIR

# Collected here too: the same test, on this module's database_url.
from .test_sessions_grpc import test_rotation_reuse_and_the_overlap_window  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(create_pgbouncer_database: Callable[[str, Path], str]) -> str:
    return create_pgbouncer_database("auth", MIGRATIONS_DIR)
