"""Use cases of the auth service: sign up, log in, publish the signing keys."""
