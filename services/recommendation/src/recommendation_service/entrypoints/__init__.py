"""entrypoints layer of the recommendation service."""
