"""Use cases: learn from one event; recommend for one user."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from switchyard_kit import FieldViolation, InvalidArgument, utc_now

from recommendation_service.domain.events import PurchaseRecorded, RefundRecorded
from recommendation_service.domain.model import (
    NEGLIGIBLE,
    HistoryItem,
    ItemDelta,
    ModelParameters,
    Recommendation,
    buyer_change,
    history_change,
    personal_scores,
    popularity_now,
    preferences,
    recent_history,
    recommend,
)
from recommendation_service.service_layer.ports import (
    ModelUnitOfWork,
    ModelUnitOfWorkFactory,
    RecommendationCache,
    StoredPurchase,
)

logger = logging.getLogger("recommendation")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


@dataclass(frozen=True)
class Outcome:
    """What applying one event did: `applied` False for a duplicate."""

    applied: bool
    user_id: str


class ModelUpdates:
    """Applies purchase and refund events to the model, exactly once per event id.

    Each event is one transaction: the event id is recorded with the change,
    so a redelivered event (at-least-once delivery) changes nothing. After the
    commit the user's cached recommendations are dropped.
    """

    def __init__(
        self,
        uow_factory: ModelUnitOfWorkFactory,
        cache: RecommendationCache,
        parameters: ModelParameters,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.uow_factory = uow_factory
        self.cache = cache
        self.parameters = parameters
        self.clock = clock

    def apply(self, event_id: str, event: PurchaseRecorded | RefundRecorded) -> Outcome:
        with self.uow_factory(for_user=event.user_id) as uow:
            if uow.model.event_seen(event_id):
                return Outcome(applied=False, user_id=event.user_id)
            uow.model.lock_user(event.user_id, self.clock())
            if isinstance(event, PurchaseRecorded):
                self._purchase(uow, event)
            else:
                self._refund(uow, event)
            uow.model.record_event(event_id, type(event).__name__, self.clock())
            uow.commit()
        self.cache.invalidate_user(event.user_id)
        return Outcome(applied=True, user_id=event.user_id)

    def _purchase(self, uow: ModelUnitOfWork, event: PurchaseRecorded) -> None:
        known = uow.model.purchase(event.payment_id)
        if known is not None and known.recorded:
            return  # the same payment under another event id: counted once
        fraction = known.refunded_fraction if known is not None else 0.0
        uow.model.save_purchase(
            StoredPurchase(
                payment_id=event.payment_id,
                user_id=event.user_id,
                occurred_at=event.occurred_at,
                refunded_fraction=fraction,
                recorded=True,
                items=dict(event.items),
            )
        )
        kept = {sku: quantity * (1.0 - fraction) for sku, quantity in event.items.items()}
        self._change_history(uow, event.user_id, kept, event.occurred_at, bought=True)

    def _refund(self, uow: ModelUnitOfWork, event: RefundRecorded) -> None:
        known = uow.model.purchase(event.payment_id)
        if known is None:
            # The refund overtook its payment: remember the fraction for when it comes.
            uow.model.save_purchase(
                StoredPurchase(
                    payment_id=event.payment_id,
                    user_id=event.user_id,
                    occurred_at=event.occurred_at,
                    refunded_fraction=event.refunded_fraction,
                    recorded=False,
                    items={},
                )
            )
            return
        if event.refunded_fraction <= known.refunded_fraction:
            return  # refunds are cumulative: an older (or the same) state changes nothing
        taken_back = event.refunded_fraction - known.refunded_fraction
        uow.model.save_purchase(
            StoredPurchase(
                payment_id=known.payment_id,
                user_id=known.user_id,
                occurred_at=known.occurred_at,
                refunded_fraction=event.refunded_fraction,
                recorded=known.recorded,
                items=known.items,
            )
        )
        if known.recorded:
            returned = {sku: -quantity * taken_back for sku, quantity in known.items.items()}
            self._change_history(uow, known.user_id, returned, known.occurred_at, bought=False)

    def _change_history(
        self,
        uow: ModelUnitOfWork,
        user_id: str,
        quantity_changes: Mapping[str, float],
        purchased_at: datetime,
        *,
        bought: bool,
    ) -> None:
        history = uow.model.user_history(user_id)
        old_quantities = {sku: item.quantity for sku, item in history.items()}
        new_quantities = dict(old_quantities)
        saved: dict[str, HistoryItem | None] = {}
        for sku, change in quantity_changes.items():
            quantity = new_quantities.get(sku, 0.0) + change
            previous = history.get(sku)
            if quantity <= NEGLIGIBLE:
                new_quantities.pop(sku, None)
                saved[sku] = None
                continue
            new_quantities[sku] = quantity
            last = previous.last_purchased_at if previous is not None else purchased_at
            if bought and purchased_at > last:
                last = purchased_at
            saved[sku] = HistoryItem(quantity=quantity, last_purchased_at=last)
        delta = history_change(
            preferences(old_quantities), preferences(new_quantities), self.parameters
        )
        items = dict(delta.items)
        for sku, change in quantity_changes.items():
            current = items.get(sku, ItemDelta())
            buyer = buyer_change(history.get(sku), saved[sku], self.parameters)
            items[sku] = ItemDelta(
                mass=current.mass,
                quantity=current.quantity + change,
                popularity=buyer.popularity,
                buyers=buyer.buyers,
            )
        uow.model.save_history(user_id, saved)
        uow.model.apply_item_deltas(items)
        uow.model.apply_pair_deltas(delta.pairs)


def checked_limit(limit: int) -> int:
    """The request's limit: 0 means the default; 1 to MAX_LIMIT otherwise."""
    if limit == 0:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(
            "invalid limit",
            [FieldViolation("limit", f"must be between 1 and {MAX_LIMIT} (0 means the default)")],
        )
    return limit


class RecommendationQueries:
    """Top-N per user: from the cache, else scored from the model and cached.

    The cached list holds MAX_LIMIT items, so every `limit` is a slice of it.
    The popular list is shared by every user and cached on its own (it is the
    fallback, and the whole answer for users with no purchases).
    """

    def __init__(
        self,
        uow_factory: ModelUnitOfWorkFactory,
        cache: RecommendationCache,
        parameters: ModelParameters,
        *,
        popular_pool: int = 500,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.uow_factory = uow_factory
        self.cache = cache
        self.parameters = parameters
        self.popular_pool = popular_pool
        self.clock = clock

    def recommend(self, user_id: str, limit: int) -> list[Recommendation]:
        limit = checked_limit(limit)
        cached = self.cache.get_user(user_id, limit)
        if cached is not None:
            return cached
        items = self._compute(user_id)
        if items:
            # An empty answer is not cached: the first purchase anywhere must show at once.
            self.cache.set_user(user_id, items)
        return items[:limit]

    def _compute(self, user_id: str) -> list[Recommendation]:
        popular = self.cache.get_popular()
        with self.uow_factory(for_user=user_id) as uow:
            history = uow.model.user_history(user_id)
            personal: dict[str, float] = {}
            if history:
                prefs = recent_history(history, self.parameters.history_limit)
                personal = personal_scores(
                    prefs,
                    uow.model.item_masses(prefs),
                    uow.model.neighbours(prefs),
                    self.parameters,
                )
            if popular is None:
                popular = uow.model.popular(self.popular_pool, self.parameters.popular_min_buyers)
                if popular:
                    self.cache.set_popular(popular)
        now = self.clock()
        decayed = [(sku, popularity_now(mass, now, self.parameters)) for sku, mass in popular]
        return recommend(
            history=history,
            personal=personal,
            popular=decayed,
            limit=MAX_LIMIT,
            parameters=self.parameters,
        )
