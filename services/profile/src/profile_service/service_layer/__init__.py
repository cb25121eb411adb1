"""Use cases of the profile service and the unit of work they run in."""
