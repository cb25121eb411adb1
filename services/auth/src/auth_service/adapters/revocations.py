"""The revoked-session set in Redis, which the gateway reads for every
authenticated request.

Contract with the gateway (gateway/src/gateway/revocation.py): a key
`switchyard:auth:revoked-session:<sid>` exists while access tokens of session
`<sid>` could still be unexpired; its value is the revocation time (Unix
seconds). Without Redis nothing is written here: the gateway polls
AuthService.ListRevokedSessions instead.
"""

from __future__ import annotations

import logging
from datetime import datetime

import redis

from auth_service.service_layer.ports import RevocationNotPublished

logger = logging.getLogger(__name__)

REVOKED_SESSION_PREFIX = "switchyard:auth:revoked-session:"


def revoked_session_key(session_id: str) -> str:
    return f"{REVOKED_SESSION_PREFIX}{session_id}"


class RedisRevocationPublisher:
    """SETs the revoked-session key for as long as an access token can live
    (`ttl_seconds`: the access-token lifetime plus margins for clock skew and
    for replicas still signing with a cached key)."""

    def __init__(self, url: str, ttl_seconds: int, socket_timeout: float = 0.5) -> None:
        self._ttl = ttl_seconds
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )

    def session_revoked(self, session_id: str, revoked_at: datetime) -> None:
        try:
            self._client.set(
                revoked_session_key(session_id), str(int(revoked_at.timestamp())), ex=self._ttl
            )
        except redis.RedisError as exc:
            raise RevocationNotPublished(f"redis: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._client.close()


class NoRevocationPublisher:
    """No Redis: the gateway learns revocations from ListRevokedSessions."""

    def session_revoked(self, session_id: str, revoked_at: datetime) -> None:
        return None

    def close(self) -> None:
        return None
