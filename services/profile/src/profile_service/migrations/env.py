"""Alembic environment of the profile service (see switchyard_kit.run_migrations)."""

from profile_service.adapters.tables import metadata
from switchyard_kit import run_migrations

run_migrations(metadata)
