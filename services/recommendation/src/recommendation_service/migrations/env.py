"""Alembic environment of the recommendation service (see switchyard_kit.run_migrations)."""

from recommendation_service.adapters.tables import metadata
from switchyard_kit import run_migrations

run_migrations(metadata)
