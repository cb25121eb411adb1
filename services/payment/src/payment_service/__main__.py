"""`python -m payment_service [serve|migrate|relay|reconcile|cleanup-idempotency-keys]`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from switchyard_kit import (
    serve,
    setup_telemetry,
    start_liveness,
    start_metrics_server,
    stop_event_on_signals,
    watch_outbox_backlog,
)
from switchyard_kit import upgrade_database as apply_migrations
from switchyard_kit.cli import Command, run_cli

from payment_service.config import PaymentSettings
from payment_service.entrypoints.app import (
    MIGRATIONS_DIR,
    cleanup_database,
    grpc_service,
    reconcile_database,
    relays_from,
    shards_from,
)
from payment_service.entrypoints.relay_loop import run_relays

logger = logging.getLogger("payment")


def _serve(settings: PaymentSettings) -> int:
    setup_telemetry("payment")
    serve(grpc_service(shards_from(settings), settings), settings)
    return 0


def _migrate(settings: PaymentSettings) -> int:
    for name, url in settings.shard_urls.items():
        apply_migrations(url, MIGRATIONS_DIR)
        logger.info("migrations applied", extra={"shard": name})
    shards = shards_from(settings)
    shards.seed_ownership()
    shards.dispose()
    return 0


def _relay(settings: PaymentSettings) -> int:
    setup_telemetry("payment-relay")
    shards = shards_from(settings)
    # The relay's own metrics port (PAYMENT_METRICS_PORT as given to this process).
    for name, database in shards:
        watch_outbox_backlog(database.engine, name=f"outbox_{name}" if shards.sharded else "outbox")
    start_metrics_server(settings.metrics_port, settings.host)
    relays = relays_from(shards, settings)
    stop = stop_event_on_signals()
    heartbeat = start_liveness(
        settings.liveness_port, settings.host, settings.liveness_max_age_seconds
    )
    if len(relays) == 1:
        relays[0].run(stop, heartbeat=heartbeat)
    else:
        run_relays(relays, stop, heartbeat=heartbeat)
    shards.dispose()
    return 0


def _reconcile(settings: PaymentSettings) -> int:
    shards = shards_from(settings)
    violations = reconcile_database(shards)
    shards.dispose()
    for violation in violations:
        print(f"VIOLATION {violation}")
    if violations:
        print(f"reconcile: {len(violations)} invariant(s) broken", file=sys.stderr)
        return 1
    print("reconcile: ok, every invariant holds")
    return 0


def _cleanup(settings: PaymentSettings) -> int:
    shards = shards_from(settings)
    deleted = cleanup_database(shards)
    shards.dispose()
    print(f"cleanup-idempotency-keys: deleted {deleted} expired key(s)")
    return 0


COMMANDS = {
    "serve": Command("run the gRPC server (the default)", _serve, "payment"),
    "migrate": Command("apply the database migrations", _migrate, "payment"),
    "relay": Command(
        "publish outbox events to Redis Streams or the event sinks", _relay, "payment-relay"
    ),
    "reconcile": Command(
        "check the ledger invariants; exit 1 on any violation", _reconcile, "payment"
    ),
    "cleanup-idempotency-keys": Command("delete expired idempotency keys", _cleanup, "payment"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("payment_service", __doc__, PaymentSettings, COMMANDS, argv)


def relay_main() -> int:
    """The `payment-relay` console script."""
    return main(["relay"])


if __name__ == "__main__":
    raise SystemExit(main())
