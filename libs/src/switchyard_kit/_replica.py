"""Safe routing of reads to a PostgreSQL streaming replica.

`ReplicaRouter` answers one question per read: may this read go to the
replica? Yes only when

- the replica answered the last probe (else: `replica_down`),
- its lag is under the bound (else: `replica_lagging`),
- that probe is recent (else: `unknown`), and
- for a read "after the writes of" a key (a user id), the replica has
  replayed the primary's WAL position recorded when that key was last
  written (else: `not_yet_replayed`) — read-your-writes.

Otherwise the read goes to the primary. Readiness never depends on the
replica: a `Database` pings its primary only.

Lag is measured in WAL positions, not by `now() - pg_last_xact_replay_timestamp()`
(which grows on an idle primary that has nothing to replay). Each probe
samples the primary's `pg_current_wal_lsn()` and then the replica's
`pg_last_wal_replay_lsn()`; the lag is the age of the oldest sample the
replica has not replayed (0 when it has replayed the latest one), so it
errs late by at most one probe interval. A replica is not trusted until it
has replayed the first sample (until then the lag counts as over the
bound).

Probes run in a background thread every `probe_interval_seconds` (0.5 s by
default), never on a read. The write marks (key -> LSN) live in the
service's shared cache (Redis when configured, so every pod sees them) and
in the writing process, and expire after `2 x bound + 5 s`: by then the
write is replayed, or the replica lags past the bound and every read goes
to the primary anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, text

from switchyard_kit._cache import InProcessCache
from switchyard_kit._metrics import (
    REPLICA_LAG,
    REPLICA_READS,
    REPLICA_STATE_CHANGES,
    REPLICA_USABLE,
)

logger = logging.getLogger("switchyard.db.replica")

FRESH = "fresh"
REPLICA_DOWN = "replica_down"
REPLICA_LAGGING = "replica_lagging"
UNKNOWN = "unknown"
NOT_YET_REPLAYED = "not_yet_replayed"

# Past any real WAL position (2**62 bytes of WAL), yet exact as a double (Redis' Lua).
UNKNOWN_WRITE_POSITION = 2**62

_PRIMARY_POSITION = text("SELECT CAST(pg_current_wal_lsn() AS text)")
# A promoted or plain server (not in recovery) is its own latest position.
_REPLAY_POSITION = text(
    "SELECT CAST(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
    " ELSE pg_current_wal_lsn() END AS text)"
)


def parse_lsn(value: str) -> int:
    """A PostgreSQL LSN ("16/B374D848") as an integer, ordered like WAL positions."""
    high, low = value.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class WriteMarkStore(Protocol):
    """Where write marks are kept: the kit's caches (`raise_to` keeps the larger)."""

    def get(self, key: str) -> bytes | None: ...

    def raise_to(self, key: str, value: int, ttl_seconds: float) -> None: ...


class WalHistory:
    """When the primary was at which WAL position: the yardstick of replica lag.

    `lag(now, replay_lsn)` is the age of the oldest sample the replica has not
    replayed, 0 when it has replayed the latest: an idle primary (no new WAL)
    is no lag, however old its last transaction. The first sample is dated
    `untrusted_for` seconds back, so a replica is not trusted until it has
    replayed what the primary had when watching began.

    Example::

        history = WalHistory(untrusted_for=6, keep_seconds=20)
        history.add(now, primary_lsn)
        history.lag(now, replay_lsn)   # seconds
    """

    def __init__(self, *, untrusted_for: float, keep_seconds: float) -> None:
        self.untrusted_for = untrusted_for
        self.keep_seconds = keep_seconds
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, primary_lsn: int) -> None:
        if not self._samples:
            self._samples.append((now - self.untrusted_for, primary_lsn))
        elif primary_lsn > self._samples[-1][1]:
            self._samples.append((now, primary_lsn))
        # Older samples only matter while a replica is behind them; one that
        # is further behind still reads as lagging by the oldest one kept.
        horizon = now - self.keep_seconds
        while len(self._samples) > 1 and self._samples[1][0] < horizon:
            self._samples.popleft()

    def lag(self, now: float, replay_lsn: int) -> float | None:
        """Seconds behind, or None before the first sample."""
        for sampled_at, primary_lsn in self._samples:
            if primary_lsn > replay_lsn:
                return max(0.0, now - sampled_at)
        return 0.0 if self._samples else None


@dataclass(frozen=True)
class ReplicaState:
    """What the last probe found. `replay_lsn` is the replica's replayed position."""

    state: str  # "usable", "down", "lagging", or "unknown" before the first probe
    replay_lsn: int | None
    lag_seconds: float | None
    checked_at: float

    @property
    def usable(self) -> bool:
        return self.state == "usable"


class ReplicaRouter:
    """Decides, per read, between a replica and its primary; see the module docstring.

    Example::

        router = ReplicaRouter(primary_engine, replica_engine, label="profile")
        if router.refusal(after_writes_of=user_id) is None:
            ...                               # read the replica
        ...                                   # after a committed write of user_id:
        router.remember_write(user_id)
    """

    def __init__(
        self,
        primary: Engine,
        replica: Engine,
        *,
        label: str,
        max_lag_seconds: float = 5.0,
        probe_interval_seconds: float = 0.5,
        marks: WriteMarkStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.label = label
        self.max_lag_seconds = max_lag_seconds
        self.probe_interval_seconds = probe_interval_seconds
        self.mark_ttl_seconds = 2 * max_lag_seconds + 5
        self.shared_marks = marks
        # Marks of this process's own writes: read-your-writes holds on the
        # pod that wrote even when the shared cache is unreachable.
        self.local_marks = InProcessCache(f"{label}.write-marks")
        self.clock = clock
        self._state = ReplicaState(UNKNOWN, None, None, clock())
        self._history = WalHistory(
            untrusted_for=max_lag_seconds + 1, keep_seconds=2 * max_lag_seconds + 10
        )
        self._probe_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        REPLICA_USABLE.labels(label).set(0)

    # --- routing ---------------------------------------------------------------------

    @property
    def state(self) -> ReplicaState:
        self._ensure_probing()
        return self._state

    def refusal(self, after_writes_of: str | None = None) -> str | None:
        """None when the replica may serve this read, else why not (a reason label)."""
        return self._refusal(after_writes_of)

    def count_read(self, refused_because: str | None) -> None:
        """Count a read where it went: the replica (None) or the primary (why)."""
        served_by = "replica" if refused_because is None else "primary"
        REPLICA_READS.labels(self.label, served_by, refused_because or FRESH).inc()

    def replica_failed(self) -> None:
        """A read found the replica unreachable: stop using it until a probe says otherwise."""
        self._set_state(ReplicaState("down", None, None, self.clock()))

    def _refusal(self, after_writes_of: str | None) -> str | None:
        state = self.state
        if state.state == "down":
            return REPLICA_DOWN
        if state.state == "lagging":
            return REPLICA_LAGGING
        # A probe that stalls (a replica host that swallows packets) must not
        # leave an old "usable" in place.
        if not state.usable or self.clock() - state.checked_at > self.max_lag_seconds:
            return UNKNOWN
        if after_writes_of is not None:
            mark = self._mark(after_writes_of)
            if mark is not None and (state.replay_lsn is None or state.replay_lsn < mark):
                return NOT_YET_REPLAYED
        return None

    # --- write marks -----------------------------------------------------------------

    def remember_write(self, key: str) -> None:
        """Record the primary's WAL position now, after a committed write of `key`."""
        try:
            with self.primary.connect() as connection:
                lsn = parse_lsn(str(connection.execute(_PRIMARY_POSITION).scalar_one()))
        except Exception as exc:
            # The write is committed: never report it failed. Not knowing its
            # position, keep the key's reads on the primary until the mark expires.
            logger.warning(
                "write position unreadable: the key's reads stay on the primary for a while",
                extra={"database": self.label, "error": type(exc).__name__},
            )
            lsn = UNKNOWN_WRITE_POSITION
        mark_key = _mark_key(key)
        self.local_marks.raise_to(mark_key, lsn, self.mark_ttl_seconds)
        if self.shared_marks is not None:
            self.shared_marks.raise_to(mark_key, lsn, self.mark_ttl_seconds)

    def _mark(self, key: str) -> int | None:
        mark_key = _mark_key(key)
        found = [
            int(value)
            for store in (self.local_marks, self.shared_marks)
            if store is not None and (value := store.get(mark_key)) is not None
        ]
        return max(found) if found else None

    # --- probing ---------------------------------------------------------------------

    def probe(self) -> ReplicaState:
        """Measure the replica now (the background thread calls this; so may tests)."""
        with self._probe_lock:
            now = self.clock()
            try:
                with self.primary.connect() as connection:
                    primary_lsn = parse_lsn(str(connection.execute(_PRIMARY_POSITION).scalar_one()))
                self._history.add(now, primary_lsn)
            except Exception as exc:
                # Without the primary the lag is unknown; the primary's own
                # failure is readiness's business, not the router's.
                logger.debug("primary position unreadable", extra={"error": type(exc).__name__})
            try:
                with self.replica.connect() as connection:
                    replay_lsn = parse_lsn(str(connection.execute(_REPLAY_POSITION).scalar_one()))
            except Exception as exc:
                state = ReplicaState("down", None, None, now)
                self._set_state(state, error=type(exc).__name__)
                return state
            lag = self._history.lag(now, replay_lsn)
            usable = lag is not None and lag <= self.max_lag_seconds
            state = ReplicaState("usable" if usable else "lagging", replay_lsn, lag, now)
            self._set_state(state)
            return state

    def _set_state(self, state: ReplicaState, error: str | None = None) -> None:
        previous = self._state
        self._state = state
        REPLICA_USABLE.labels(self.label).set(1 if state.usable else 0)
        if state.lag_seconds is not None:
            REPLICA_LAG.labels(self.label).set(state.lag_seconds)
        if state.state == previous.state:
            return
        REPLICA_STATE_CHANGES.labels(self.label, state.state).inc()
        extra = {
            "database": self.label,
            "replica_state": state.state,
            "previous_state": previous.state,
            "lag_seconds": None if state.lag_seconds is None else round(state.lag_seconds, 3),
            "max_lag_seconds": self.max_lag_seconds,
            "error": error,
        }
        if state.usable:
            logger.info("replica usable: stale-tolerant reads go to the replica", extra=extra)
        else:
            logger.warning("replica not usable: reads go to the primary", extra=extra)

    def _ensure_probing(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"replica-probe-{self.label}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(self.probe_interval_seconds)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _mark_key(key: str) -> str:
    return f"write-lsn:{key}"
