"""The profile domain: plain Python, no gRPC, no SQLAlchemy."""
