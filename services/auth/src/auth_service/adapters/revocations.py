"""Revoked sessions published to Redis, for the gateway to refuse their access tokens.

Contract with the gateway (gateway/src/gateway/revocation.py), two forms of
the same facts, written together:

- the stream `switchyard:auth:revocations`: one entry per revocation
  (`session_id`, `revoked_at` in Unix seconds), trimmed to the entries of the
  last `ttl_seconds`. Every gateway worker reads it (XREAD) into a local set,
  so a request checks revocation without a Redis round trip;
- a key `switchyard:auth:revoked-session:<sid>` that exists while access
  tokens of session `<sid>` could still be unexpired (value: the revocation
  time), for a gateway whose stream reader is not (yet) live to check per
  request.

Without Redis nothing is written here: the gateway polls
AuthService.ListRevokedSessions instead.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import redis

from auth_service.service_layer.ports import RevocationNotPublished

logger = logging.getLogger(__name__)

REVOKED_SESSION_PREFIX = "switchyard:auth:revoked-session:"
REVOCATION_STREAM = "switchyard:auth:revocations"


def revoked_session_key(session_id: str) -> str:
    return f"{REVOKED_SESSION_PREFIX}{session_id}"


class RedisRevocationPublisher:
    """Appends the revocation to the stream and SETs the revoked-session key,
    both kept for as long as an access token can live (`ttl_seconds`: the
    access-token lifetime plus margins for clock skew and for replicas still
    signing with a cached key). Publishing twice is harmless (resync does)."""

    def __init__(self, url: str, ttl_seconds: int, socket_timeout: float = 0.5) -> None:
        self._ttl = ttl_seconds
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )

    def session_revoked(self, session_id: str, revoked_at: datetime) -> None:
        at = str(int(revoked_at.timestamp()))
        # Entry ids are milliseconds: everything older than the TTL may go
        # (approximately, so Redis trims whole nodes cheaply).
        oldest_ms = int((time.time() - self._ttl) * 1000)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.set(revoked_session_key(session_id), at, ex=self._ttl)
                pipe.xadd(
                    REVOCATION_STREAM,
                    {"session_id": session_id, "revoked_at": at},
                    minid=oldest_ms,
                    approximate=True,
                )
                pipe.execute()
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
