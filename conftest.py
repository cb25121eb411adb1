"""Fixtures every test folder can use (real PostgreSQL/Redis, see switchyard_dev.testing)."""

pytest_plugins = [
    "switchyard_dev.testing",
    "switchyard_dev.pgbouncer",
    "switchyard_dev.replication",
]
