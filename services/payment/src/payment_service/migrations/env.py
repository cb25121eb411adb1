"""Alembic environment of the payment service (driven by `python -m payment_service migrate`)."""

from payment_service.adapters.tables import metadata
from switchyard_kit import run_migrations

run_migrations(metadata)
