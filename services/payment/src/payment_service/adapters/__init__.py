"""Storage (SQLAlchemy Core), the outbox, and proto conversions."""
