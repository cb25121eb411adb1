"""`python -m payment_service [serve|migrate|relay|reconcile|cleanup-idempotency-keys|reshard]`.

`reshard` takes its own options (`python -m payment_service reshard --help`):
    reshard --status                   the live slot map, per shard
    reshard --move-slots 0-63 --to s4  move slots (one at a time) to shard s4
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
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

from payment_service.adapters.resharding import ReshardError, move_slots
from payment_service.config import PaymentSettings
from payment_service.domain.shards import parse_slot_ranges
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
        # What an alert can see besides the failed Job (kube_job_failed): one
        # ERROR line per broken invariant, under a stable event name.
        logger.error(
            "ledger invariant violated",
            extra={
                "event": "payment.reconcile.violation",
                "check": violation.check,
                "samples": violation.samples[:5],
            },
        )
    if violations:
        print(f"reconcile: {len(violations)} invariant(s) broken", file=sys.stderr)
        return 1
    logger.info("ledger reconciled", extra={"event": "payment.reconcile.ok"})
    print("reconcile: ok, every invariant holds")
    return 0


def _cleanup(settings: PaymentSettings) -> int:
    shards = shards_from(settings)
    deleted = cleanup_database(
        shards,
        batch_size=settings.retention_batch_size,
        max_keys=settings.retention_max_rows_per_run,
    )
    shards.dispose()
    print(f"cleanup-idempotency-keys: deleted {deleted} expired key(s)")
    return 0


def reshard_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payment_service reshard",
        description="Move hash slots between the shards of PAYMENT_SHARDS while payments "
        "keep flowing (see the resharding runbook in services/payment/README.md).",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--status", action="store_true", help="print the live slot map")
    action.add_argument("--move-slots", metavar="RANGES", help="slots to move, e.g. 0-63 or 0-3,17")
    parser.add_argument("--to", metavar="SHARD", help="the shard that receives them")
    return parser


def _reshard(settings: PaymentSettings, options: argparse.Namespace) -> int:
    shards = shards_from(settings)
    try:
        if options.status:
            for name, ranges in shards.refresh().ranges().items():
                print(f"{name}: {ranges}")
            return 0
        slots = parse_slot_ranges(options.move_slots)
        began = time.monotonic()
        moves = move_slots(shards, slots, options.to)
        elapsed = time.monotonic() - began
    except (ReshardError, ValueError) as exc:
        print(f"reshard: {exc}", file=sys.stderr)
        return 1
    finally:
        shards.dispose()
    for move in moves:
        print(
            f"slot {move.slot}: {move.source} -> {move.target}, {move.users} user(s), "
            f"{move.rows} row(s), writers paused {move.pause_seconds * 1000:.1f} ms"
        )
    longest = max((move.pause_seconds for move in moves), default=0.0)
    print(
        f"reshard: moved {len(moves)} slot(s) to {options.to} in {elapsed:.2f}s; "
        f"longest pause {longest * 1000:.1f} ms"
    )
    return 0


def _reshard_usage(_: PaymentSettings) -> int:
    reshard_parser().print_usage(sys.stderr)
    return 2


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
    "reshard": Command(
        "move hash slots between shards (reshard --help)", _reshard_usage, "payment-reshard"
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["reshard"]:
        # The kit's command line takes no options; reshard reads its own here.
        options = reshard_parser().parse_args(arguments[1:])
        if options.move_slots and not options.to:
            reshard_parser().error("--move-slots needs --to SHARD")
        commands = {
            **COMMANDS,
            "reshard": Command(
                COMMANDS["reshard"].help,
                lambda settings: _reshard(settings, options),
                "payment-reshard",
            ),
        }
        return run_cli("payment_service", __doc__, PaymentSettings, commands, ["reshard"])
    return run_cli("payment_service", __doc__, PaymentSettings, COMMANDS, arguments)


def relay_main() -> int:
    """The `payment-relay` console script."""
    return main(["relay"])


if __name__ == "__main__":
    raise SystemExit(main())
