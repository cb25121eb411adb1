"""domain layer of the recommendation service."""
