"""Adapters: the SQLAlchemy table and repository, and the profile cache."""
