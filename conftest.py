"""Fixtures every test folder can use (real PostgreSQL/Redis, see switchyard_kit.testing)."""

pytest_plugins = ["switchyard_kit.testing"]
