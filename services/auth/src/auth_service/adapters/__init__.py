"""Adapters: SQLAlchemy storage, argon2 hashing, Ed25519/JWT signing, Fernet
key sealing, Redis counters and revocations, and the profile service's
CreateProfile."""
