"""make new-service / make remove-service in a copy of the repository."""
