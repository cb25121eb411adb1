"""Use cases: top-ups, payments, refunds, reads, the relay and the checks."""
