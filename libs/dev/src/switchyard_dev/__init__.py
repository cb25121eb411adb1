"""Development tooling for Switchyard: `make run`'s launcher and supervisor, and
the pytest fixtures for real PostgreSQL and Redis (`switchyard_dev.testing`).

A dev dependency of the workspace root only: no service or gateway package
depends on it, so no image installs it (tests/deploy checks both).
"""
