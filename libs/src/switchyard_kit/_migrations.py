"""Alembic, driven from code: each service keeps its own migrations folder."""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from switchyard_kit._engine import create_database_engine


def alembic_config(database_url: str, migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    # ConfigParser treats % as interpolation; URLs may carry escaped characters.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, migrations_dir: Path, revision: str = "head") -> None:
    """Apply the service's migrations up to `revision`.

    Example::

        upgrade_database(settings.database_url, Path(__file__).parent / "migrations")
    """
    command.upgrade(alembic_config(database_url, migrations_dir), revision)


def run_migrations(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py (online and offline modes)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_database_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
