"""Making revocations count for access tokens too.

The database is the truth: a session is revoked when its row says so, and the
refresh path checks it. Access tokens are verified by the gateway without
asking auth, so each revocation is also published to the revoked-session set
in Redis, which the gateway reads on every request (without Redis the gateway
polls ListRevokedSessions instead, served from the database here).

Publishing is retried from the database: if Redis is unreachable when a
session is revoked, the request still succeeds, and a background loop
republishes every revocation since the failure once Redis answers again. At
start the loop republishes everything still within the lookback (a process
that died during an outage loses nothing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from auth_service.domain.model import Session
from auth_service.service_layer.ports import (
    RevocationNotPublished,
    RevocationPublisher,
    UnitOfWork,
)

logger = logging.getLogger(__name__)


class Revocations:
    """Example::

    revocations = Revocations(uow_factory, RedisRevocationPublisher(url, ttl), clock,
                              lookback=timedelta(seconds=1020))
    revocations.publish([(session.id, now)])
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        publisher: RevocationPublisher,
        clock: Callable[[], datetime],
        lookback: timedelta,
    ) -> None:
        self._uow_factory = uow_factory
        self._publisher = publisher
        self._clock = clock
        self.lookback = lookback
        self._lock = threading.Lock()
        self._resync_from: datetime | None = None

    @property
    def pending_since(self) -> datetime | None:
        """The oldest revocation not yet known to be published, if any."""
        return self._resync_from

    def publish(self, revoked: Sequence[tuple[str, datetime]]) -> None:
        """Publish committed revocations; on failure remember to republish them."""
        for session_id, revoked_at in revoked:
            try:
                self._publisher.session_revoked(session_id, revoked_at)
            except RevocationNotPublished as exc:
                logger.error(
                    "revocation not published; it will be retried",
                    extra={"session_id": session_id, "error": str(exc)},
                )
                self._mark(min(at for _, at in revoked))
                return

    def republish_all(self) -> None:
        """Republish every revocation within the lookback (at start)."""
        self._mark(self._clock() - self.lookback)

    def _mark(self, since: datetime) -> None:
        with self._lock:
            if self._resync_from is None or since < self._resync_from:
                self._resync_from = since

    def resync(self) -> bool:
        """Republish what is pending; True when nothing is pending any more."""
        with self._lock:
            since = self._resync_from
        if since is None:
            return True
        started = self._clock()
        since = max(since, started - self.lookback)
        try:
            sessions = self.revoked_since(since)
            for session in sessions:
                assert session.revoked_at is not None
                self._publisher.session_revoked(session.id, session.revoked_at)
        except RevocationNotPublished:
            return False
        except Exception:
            logger.exception("republishing revocations failed")
            return False
        with self._lock:
            # A failure recorded meanwhile is newer than `started`? keep it.
            if self._resync_from is not None and self._resync_from <= since:
                self._resync_from = None
        if sessions:
            logger.info("revocations republished", extra={"count": len(sessions)})
        return self._resync_from is None

    def revoked_since(self, since: datetime | None) -> list[Session]:
        """Sessions revoked since `since` (never further back than the lookback)."""
        floor = self._clock() - self.lookback
        with self._uow_factory() as uow:
            return uow.sessions.revoked_since(max(since, floor) if since else floor)

    def run(self, stop: threading.Event, interval_seconds: float = 2.0) -> None:
        """Retry pending publications until `stop` is set."""
        while not stop.wait(interval_seconds):
            self.resync()
