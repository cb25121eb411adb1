"""A representative recommendation test again, with the database behind a
real PgBouncer in the prod overlay's transaction pooling
(switchyard_dev.pgbouncer): concurrent, redelivered events of many users end
as a recount from scratch. Payment runs whole suites through it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from recommendation_service.entrypoints.app import MIGRATIONS_DIR

# Collected here too: the same test, on this module's database_url.
from .test_worker import test_concurrent_events_of_many_users_equal_a_recount  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(create_pgbouncer_database: Callable[[str, Path], str]) -> str:
    return create_pgbouncer_database("recommendation", MIGRATIONS_DIR)
