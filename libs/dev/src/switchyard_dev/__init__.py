"""Development tooling for Switchyard: `make run`'s launcher and supervisor.

A dev dependency of the workspace root only: no service or gateway package
depends on it, so no image installs it (tests/deploy checks both).
"""
