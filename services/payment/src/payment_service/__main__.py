"""`python -m payment_service [serve|migrate|relay|reconcile|cleanup-idempotency-keys]`."""

from __future__ import annotations

import argparse
import logging
import sys

from switchyard_kit import (
    ConfigurationError,
    configure_logging,
    load_settings,
    serve,
    setup_telemetry,
    start_liveness,
    start_metrics_server,
    stop_event_on_signals,
    watch_outbox_backlog,
)
from switchyard_kit import upgrade_database as apply_migrations

from payment_service.config import PaymentSettings
from payment_service.entrypoints.app import (
    MIGRATIONS_DIR,
    database_from,
    grpc_service,
    relay_from,
)
from payment_service.service_layer.operations import cleanup_idempotency_keys, reconcile

logger = logging.getLogger("payment")

COMMANDS = {
    "serve": "run the gRPC server (the default)",
    "migrate": "apply the database migrations",
    "relay": "publish outbox events to Redis Streams or the event sinks",
    "reconcile": "check the ledger invariants; exit 1 on any violation",
    "cleanup-idempotency-keys": "delete expired idempotency keys",
}


def _serve(settings: PaymentSettings) -> int:
    setup_telemetry("payment")
    serve(grpc_service(database_from(settings), settings), settings)
    return 0


def _migrate(settings: PaymentSettings) -> int:
    apply_migrations(settings.database_url, MIGRATIONS_DIR)
    logger.info("migrations applied")
    return 0


def _relay(settings: PaymentSettings) -> int:
    setup_telemetry("payment-relay")
    database = database_from(settings)
    # The relay's own metrics port (PAYMENT_METRICS_PORT as given to this process).
    watch_outbox_backlog(database.engine)
    start_metrics_server(settings.metrics_port, settings.host)
    relay = relay_from(database, settings)
    stop = stop_event_on_signals()
    heartbeat = start_liveness(
        settings.liveness_port, settings.host, settings.liveness_max_age_seconds
    )
    relay.run(stop, heartbeat=heartbeat)
    database.dispose()
    return 0


def _reconcile(settings: PaymentSettings) -> int:
    database = database_from(settings)
    violations = reconcile(database)
    database.dispose()
    for violation in violations:
        print(f"VIOLATION {violation}")
    if violations:
        print(f"reconcile: {len(violations)} invariant(s) broken", file=sys.stderr)
        return 1
    print("reconcile: ok, every invariant holds")
    return 0


def _cleanup(settings: PaymentSettings) -> int:
    database = database_from(settings)
    deleted = cleanup_idempotency_keys(database)
    database.dispose()
    print(f"cleanup-idempotency-keys: deleted {deleted} expired key(s)")
    return 0


RUNNERS = {
    "serve": _serve,
    "migrate": _migrate,
    "relay": _relay,
    "reconcile": _reconcile,
    "cleanup-idempotency-keys": _cleanup,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payment_service", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=list(COMMANDS),
        help="; ".join(f"{name}: {what}" for name, what in COMMANDS.items()),
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(PaymentSettings)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("payment-relay" if args.command == "relay" else "payment", settings.log_level)
    return RUNNERS[args.command](settings)


def relay_main() -> int:
    """The `payment-relay` console script."""
    return main(["relay"])


if __name__ == "__main__":
    raise SystemExit(main())
