"""One real run through the `make run` scheduler: payment's
cleanup-idempotency-keys, as the registry schedules it, on PostgreSQL."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from payment_service.adapters import tables as t
from payment_service.entrypoints.app import MIGRATIONS_DIR
from switchyard_dev.launcher import Platform, PlatformConfig
from switchyard_dev.scheduler import Scheduler, scheduled_jobs
from switchyard_kit import upgrade_database


def test_the_scheduler_runs_the_key_cleanup_on_its_schedule(create_postgres_database, tmp_path):
    url = create_postgres_database("payment")
    upgrade_database(url, MIGRATIONS_DIR)
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.idempotency_keys),
            [
                {
                    "user_id": "u",
                    "key": key,
                    "operation": "TopUpWallet",
                    "fingerprint": "x",
                    "created_at": now - timedelta(days=2),
                    "expires_at": now + timedelta(hours=hours),
                }
                for key, hours in (("expired", -1), ("alive", 1))
            ],
        )
    config = PlatformConfig(ports={}, data_dir=tmp_path, python=sys.executable)
    config.extra_env.update(PAYMENT_DATABASE_URL=url, LOG_LEVEL="WARNING")
    jobs = [j for j in scheduled_jobs(config) if j.name == "payment-cleanup-idempotency-keys"]
    output = io.StringIO()
    platform = Platform([], output=output)
    scheduler = Scheduler(platform, jobs, report=lambda line: None)
    due = scheduler.next_run["payment-cleanup-idempotency-keys"]
    try:
        assert scheduler.tick(due - timedelta(seconds=1)) == []
        assert scheduler.tick(due) == ["payment-cleanup-idempotency-keys"]
        assert scheduler.wait_finished(timeout=120)
    finally:
        scheduler.stop()
        platform.stop(grace=1)
    assert scheduler.finished == [("payment-cleanup-idempotency-keys", 0)]
    assert "deleted 1 expired key(s)" in output.getvalue()
    with engine.connect() as connection:
        keys = connection.execute(sa.select(t.idempotency_keys.c.key)).scalars().all()
    engine.dispose()
    assert keys == ["alive"]
