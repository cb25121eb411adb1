"""Adapters: SQLAlchemy storage, argon2 hashing, Ed25519/JWT signing, Fernet
key sealing and the gRPC client of the profile service."""
