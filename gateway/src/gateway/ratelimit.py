"""Per-client-address rate limits of the routes whose proto names one.

A route's `(switchyard.api.v1.route).rate_limit` names its limit ("signup",
"login", "refresh"); GATEWAY_RATE_LIMIT_<NAME> sets its rate in the `limits`
package's notation ("5/minute;30/hour": a burst of 5, then 30 an hour).
A request over any of the rates answers 429 problem+json with Retry-After
(when the oldest counted request leaves the window), before the backend is
called, so a refused signup costs no password hash.

The counting is `limits`' moving window (an exact sliding log): in Redis
(REDIS_URL) one atomic Lua script per check, shared by every worker and pod;
without Redis in each worker's memory, so there the rate applies per worker
process (GATEWAY_WORKERS x the rate per pod at worst).

Redis failing (down, slow past GATEWAY_RATE_LIMIT_REDIS_TIMEOUT_SECONDS)
must not fail the request: the limit fails open, the error is counted in
gateway_rate_limit_errors_total and logged at most once per interval, and
for RETRY_REDIS_AFTER_SECONDS the limits are not checked at all, so an
outage does not add a Redis timeout to every anonymous request.
Failing closed would turn a Redis outage into a login outage; the auth
service still throttles failed logins on its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from gateway import metrics
from gateway.problems import ApiError

logger = logging.getLogger("switchyard.gateway.ratelimit")

# Keys in a shared Redis: "gateway-rate/<limit name>/<address>/...".
NAMESPACE = "gateway-rate"
ERROR_LOG_INTERVAL_SECONDS = 10.0
RETRY_REDIS_AFTER_SECONDS = 5.0


class RateLimits:
    """The per-address limits, by name; storage opened on first use (after fork).

    Example::

        limits = RateLimits({"signup": "5/minute"}, redis_url=None)
        limits.check("signup", "203.0.113.7")   # raises ApiError(429) on the 6th in a minute
    """

    def __init__(
        self,
        rates: Mapping[str, str],
        redis_url: str | None,
        redis_timeout_seconds: float = 0.25,
    ) -> None:
        self.items: dict[str, list[RateLimitItem]] = {
            name: parse_many(rate) for name, rate in rates.items() if rate.strip()
        }
        self.redis_url = redis_url
        self.redis_timeout_seconds = redis_timeout_seconds
        self._limiter: MovingWindowRateLimiter | None = None
        self._lock = threading.Lock()
        self._last_error_log = -math.inf
        self._skip_until = -math.inf

    def check(self, name: str, address: str) -> None:
        """Count one request of `address` against limit `name`; ApiError 429 if over."""
        items = self.items.get(name)
        if not items or not address:
            return
        if time.monotonic() < self._skip_until:
            metrics.RATE_LIMIT_ERRORS.labels(name).inc()
            return
        limiter = self._get_limiter()
        try:
            for item in items:
                if not limiter.hit(item, NAMESPACE, name, address):
                    stats = limiter.get_window_stats(item, NAMESPACE, name, address)
                    raise self._refused(name, stats.reset_time)
        except StorageError as error:
            self._failed_open(name, error)

    def _refused(self, name: str, reset_time: float) -> ApiError:
        metrics.RATE_LIMITED.labels(name).inc()
        retry_after = max(1, math.ceil(reset_time - time.time()))
        return ApiError(
            429,
            f"too many {name} requests from this address; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def _failed_open(self, name: str, error: StorageError) -> None:
        metrics.RATE_LIMIT_ERRORS.labels(name).inc()
        now = time.monotonic()
        self._skip_until = now + RETRY_REDIS_AFTER_SECONDS
        # One line per interval: during an outage every request would log one.
        if now - self._last_error_log >= ERROR_LOG_INTERVAL_SECONDS:
            self._last_error_log = now
            logger.warning(
                "rate limit storage failed; the request is let through",
                extra={"limit": name, "error": str(error.storage_error)},
            )

    def _get_limiter(self) -> MovingWindowRateLimiter:
        if self._limiter is None:
            with self._lock:
                if self._limiter is None:
                    self._limiter = MovingWindowRateLimiter(self._storage())
        return self._limiter

    def _storage(self) -> Storage:
        if not self.redis_url:
            return MemoryStorage()
        storage = storage_from_string(
            self.redis_url,
            wrap_exceptions=True,
            socket_timeout=self.redis_timeout_seconds,
            socket_connect_timeout=self.redis_timeout_seconds,
        )
        if not isinstance(storage, Storage):  # a redis:// URL gives the synchronous one
            raise TypeError(f"no synchronous rate limit storage for {self.redis_url!r}")
        return storage


__all__ = ["NAMESPACE", "RateLimits"]
