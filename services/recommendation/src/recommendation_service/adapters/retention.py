"""RetentionStore over the recommendation database, batched by the kit."""

from __future__ import annotations

from datetime import datetime

from switchyard_kit import Database
from switchyard_kit.retention import RetentionBound, delete_in_batches

from recommendation_service.adapters import tables as t


class SqlEventRetention:
    """Deletes old processed ids and dead letters, at most `bound.max_rows` each per run."""

    def __init__(self, database: Database, bound: RetentionBound) -> None:
        self.database = database
        self.bound = bound

    def forget_processed_events_before(self, cutoff: datetime) -> int:
        table = t.processed_events
        return delete_in_batches(self.database, table, table.c.processed_at < cutoff, self.bound)

    def forget_dead_letters_before(self, cutoff: datetime) -> int:
        table = t.dead_letters
        return delete_in_batches(self.database, table, table.c.created_at < cutoff, self.bound)
