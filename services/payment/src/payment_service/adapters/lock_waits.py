"""Lock waits: how long a transaction may wait for a lock, and what a wait
that ran out means to the caller.

PostgreSQL bounds each wait with `lock_timeout` and reports SQLSTATE 55P03;
SQLite bounds the wait for its one writer lock with the busy timeout and
reports "database is locked". Both come as `OperationalError`; the
repository turns them into domain errors here, so nothing above the
adapters knows a driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, String, bindparam, func, literal_column, true
from sqlalchemy.exc import OperationalError
from switchyard_kit import Aborted, DomainError

from payment_service.domain import errors

# PostgreSQL SQLSTATE of "could not obtain lock" (lock_timeout expired).
LOCK_NOT_AVAILABLE = "55P03"


def is_lock_timeout(error: OperationalError) -> bool:
    """A lock wait that ran out: PostgreSQL lock_timeout, SQLite busy timeout."""
    code = getattr(error.orig, "pgcode", None)
    return code == LOCK_NOT_AVAILABLE or "database is locked" in str(error.orig)


def lock_timeout_config(name: str) -> ColumnElement[str]:
    """`set_config('lock_timeout', :name, true)`: like SET LOCAL, it lasts until the
    transaction ends, but as an expression it rides along in a statement that is
    sent anyway. That nothing leaks to the next transaction, through PgBouncer's
    transaction pooling too: tests/integration/test_transactions.py
    (test_the_claim_sets_the_lock_waits_of_its_transaction_only[pgbouncer])."""
    return func.set_config(literal_column("'lock_timeout'"), bindparam(name, type_=String), true())


def milliseconds(seconds: float) -> str:
    # lock_timeout = 0 would mean "wait forever": at least one millisecond.
    return f"{max(1, round(seconds * 1000))}ms"


def row_busy() -> Aborted:
    """A wallet or payment row stayed locked longer than the row-lock wait:
    409 at the gateway, the client retries."""
    return Aborted("the wallet is busy; retry shortly", reason=errors.CONCURRENT_UPDATE)


@contextmanager
def lock_timeouts_as(error: Callable[[], DomainError]) -> Iterator[None]:
    """Inside the block, a lock wait that runs out raises `error()` instead;
    any other OperationalError goes on as it is."""
    try:
        yield
    except OperationalError as timeout:
        if is_lock_timeout(timeout):
            raise error() from None
        raise
