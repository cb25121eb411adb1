"""adapters layer of the recommendation service."""
