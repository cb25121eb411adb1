"""The auth domain: accounts, credentials and token rules in plain Python.

Nothing here imports grpc or SQLAlchemy; the service layer drives it and the
adapters store it.
"""
