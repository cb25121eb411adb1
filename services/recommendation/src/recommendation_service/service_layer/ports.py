"""What the service layer needs from storage and cache (adapters implement these)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from switchyard_kit import Transaction

from recommendation_service.domain.model import HistoryItem, ItemDelta, Neighbour, Recommendation


@dataclass(frozen=True)
class StoredPurchase:
    """A payment as the model remembers it.

    `recorded` is False for a placeholder made by a refund that arrived before
    its payment: it only carries the refunded fraction until the payment comes.
    """

    payment_id: str
    user_id: str
    occurred_at: datetime
    refunded_fraction: float
    recorded: bool
    items: Mapping[str, int]


class ModelRepository(Protocol):
    def event_seen(self, event_id: str) -> bool: ...

    def record_event(self, event_id: str, event_type: str, at: datetime) -> None: ...

    def lock_user(self, user_id: str, at: datetime) -> None:
        """Serialise the changes of one user's history (row lock until commit)."""

    def purchase(self, payment_id: str) -> StoredPurchase | None: ...

    def save_purchase(self, purchase: StoredPurchase) -> None:
        """Insert or replace the purchase and its items."""

    def user_history(self, user_id: str) -> dict[str, HistoryItem]: ...

    def save_history(self, user_id: str, changes: Mapping[str, HistoryItem | None]) -> None:
        """Set (or delete, for None) the given items of the user's history."""

    def apply_item_deltas(self, deltas: Mapping[str, ItemDelta]) -> None: ...

    def apply_pair_deltas(self, deltas: Mapping[tuple[str, str], float]) -> None: ...

    def item_masses(self, skus: Iterable[str]) -> dict[str, float]: ...

    def neighbours(self, skus: Iterable[str]) -> dict[str, list[Neighbour]]: ...

    def popular(self, limit: int, min_buyers: int) -> list[tuple[str, float]]:
        """(sku, stored popularity mass), best first, only positive masses of
        items with at least `min_buyers` buyers (domain.model.popular_list)."""

    def record_dead_letter(
        self, event_id: str, event_type: str, reason: str, payload: bytes, at: datetime
    ) -> None: ...


class ModelUnitOfWork(Transaction, Protocol):
    @property
    def model(self) -> ModelRepository: ...


class ModelUnitOfWorkFactory(Protocol):
    """A unit of work about `for_user`'s history: an event's transaction records
    the change of that user on commit; the queries' reads (from a replica when
    configured) go to the primary until the replica has replayed it, so a list
    recomputed after the change never comes from the model before it."""

    def __call__(self, *, for_user: str | None = None) -> ModelUnitOfWork: ...


class RecommendationCache(Protocol):
    """Per-user top-N lists and the shared popular list; failures read as misses."""

    def get_user(self, user_id: str, limit: int) -> list[Recommendation] | None:
        """The first `limit` items of the user's cached list; None on a miss."""
        ...

    def set_user(self, user_id: str, items: Sequence[Recommendation]) -> None: ...

    def invalidate_user(self, user_id: str) -> None: ...

    def get_popular(self) -> list[tuple[str, float]] | None: ...

    def set_popular(self, items: Sequence[tuple[str, float]]) -> None: ...


class RetentionStore(Protocol):
    """What the cleanup-processed-events job deletes; each call bounded per run."""

    def forget_processed_events_before(self, cutoff: datetime) -> int:
        """Processed event ids recorded before `cutoff`; how many went."""
        ...

    def forget_dead_letters_before(self, cutoff: datetime) -> int:
        """Dead letters of the broker-less path recorded before `cutoff`."""
        ...
