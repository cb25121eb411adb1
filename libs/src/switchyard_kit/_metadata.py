"""The gRPC metadata keys Switchyard uses, and helpers to read them.

The gateway authenticates the caller and passes the user id on; services
trust it because only the gateway (and other services) can reach them
(NetworkPolicy in k8s, loopback locally). A client's own headers never become
these keys: the gateway sets them itself.
"""

from __future__ import annotations

import grpc

from switchyard_kit._errors import Unauthenticated

USER_ID_KEY = "x-switchyard-user-id"
# The session (refresh-token family) of the verified access token, so auth
# can tell the caller's current session from the others.
SESSION_ID_KEY = "x-switchyard-session-id"
REQUEST_ID_KEY = "x-request-id"
IDEMPOTENCY_KEY = "idempotency-key"
CLIENT_ADDRESS_KEY = "x-switchyard-client-address"
USER_AGENT_KEY = "x-switchyard-user-agent"


def metadata_value(context: grpc.ServicerContext, key: str) -> str | None:
    """The first value of `key` in the call's metadata, or None."""
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value.decode() if isinstance(value, bytes) else value
    return None


def caller_user_id(context: grpc.ServicerContext) -> str:
    """The authenticated caller's user id, put there by the gateway.

    Raises Unauthenticated when absent, so a route that forgot to require a
    token fails closed.
    """
    user_id = metadata_value(context, USER_ID_KEY)
    if not user_id:
        raise Unauthenticated("this call needs an authenticated caller")
    return user_id
