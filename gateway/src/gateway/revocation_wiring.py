"""Builds the gateway's revocation check from its settings (see gateway.revocation)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from switchyard.auth.v1 import auth_pb2
from switchyard_kit import Backend

from gateway.revocation import (
    PolledRevocations,
    RedisRevocations,
    RevocationCheck,
    RevokedSince,
    StreamedRevocations,
)
from gateway.settings import GatewaySettings

LIST_REVOKED_SESSIONS = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name[
    "ListRevokedSessions"
]


def revoked_sessions_fetcher(backend: Backend, timeout: float) -> RevokedSince:
    """AuthService.ListRevokedSessions over the auth backend's channel."""

    def fetch(since: float | None) -> tuple[Sequence[tuple[str, float]], float]:
        call = backend.unary_call(LIST_REVOKED_SESSIONS)
        request = auth_pb2.ListRevokedSessionsRequest()
        if since is not None:
            stamp = Timestamp()
            stamp.FromDatetime(datetime.fromtimestamp(since, UTC))
            request.since.CopyFrom(stamp)
        response: auth_pb2.ListRevokedSessionsResponse = call(request, timeout=timeout)
        sessions = [
            (item.session_id, item.revoke_time.ToDatetime(tzinfo=UTC).timestamp())
            for item in response.sessions
        ]
        return sessions, response.as_of.ToDatetime(tzinfo=UTC).timestamp()

    return fetch


def build_revocation_check(settings: GatewaySettings, auth: Backend) -> RevocationCheck | None:
    """With REDIS_URL: auth's revocation stream followed into a local set (or,
    with GATEWAY_REVOCATION_STREAM off, one Redis lookup per request), polling
    auth while Redis fails; without it, polling auth. None when
    GATEWAY_REVOCATION_CHECK is off."""
    if not settings.revocation_check:
        return None
    polled = PolledRevocations(
        revoked_sessions_fetcher(auth, settings.jwks_fetch_timeout_seconds),
        poll_interval=settings.revocation_poll_interval_seconds,
        lookback=settings.revocation_lookback_seconds,
    )
    if not settings.redis_url:
        return polled
    per_request = RedisRevocations(settings.redis_url, fallback=polled)
    if not settings.revocation_stream:
        return per_request
    return StreamedRevocations(
        settings.redis_url, fallback=per_request, lookback=settings.revocation_lookback_seconds
    )
