"""Alembic environment of the auth database (see switchyard_kit.run_migrations)."""

from auth_service.adapters.tables import metadata
from switchyard_kit import run_migrations

run_migrations(metadata)
