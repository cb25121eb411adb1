"""The one place with SQL: the model's state in the recommendation database.

Aggregates (items, item_pairs) are changed with additive upserts
(``weight = weight + delta``) in sorted key order, so concurrent events of
different users never lose an update and never deadlock; the changes of one
user are serialised by a row lock on user_models.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recommendation_service.adapters import tables as t
from recommendation_service.domain.model import NEGLIGIBLE, HistoryItem, ItemDelta, Neighbour
from recommendation_service.service_layer.ports import StoredPurchase

# Bound parameters per statement stay far below every driver's limit.
_CHUNK = 500

T = TypeVar("T")


def _chunks(values: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class SqlModelRepository:
    """The ModelRepository port over one SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        bind = session.get_bind()
        self.dialect = bind.dialect.name

    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        raise RuntimeError(f"unsupported database dialect {self.dialect!r}")

    # -- events ---------------------------------------------------------------

    def event_seen(self, event_id: str) -> bool:
        query = sa.select(t.processed_events.c.event_id).where(
            t.processed_events.c.event_id == event_id
        )
        return self.session.execute(query).first() is not None

    def record_event(self, event_id: str, event_type: str, at: datetime) -> None:
        self.session.execute(
            t.processed_events.insert().values(
                event_id=event_id, event_type=event_type, processed_at=at
            )
        )

    def lock_user(self, user_id: str, at: datetime) -> None:
        insert = self._insert(t.user_models).values(user_id=user_id, events=0, updated_at=at)
        self.session.execute(insert.on_conflict_do_nothing(index_elements=["user_id"]))
        self.session.execute(
            sa.select(t.user_models.c.user_id)
            .where(t.user_models.c.user_id == user_id)
            .with_for_update()
        )
        self.session.execute(
            t.user_models.update()
            .where(t.user_models.c.user_id == user_id)
            .values(events=t.user_models.c.events + 1, updated_at=at)
        )

    def record_dead_letter(
        self, event_id: str, event_type: str, reason: str, payload: bytes, at: datetime
    ) -> None:
        self.session.execute(
            t.dead_letters.insert().values(
                event_id=event_id[:64],
                event_type=event_type[:128],
                reason=reason[:500],
                payload=payload,
                created_at=at,
            )
        )

    # -- purchases --------------------------------------------------------------

    def purchase(self, payment_id: str) -> StoredPurchase | None:
        row = self.session.execute(
            sa.select(t.purchases).where(t.purchases.c.payment_id == payment_id)
        ).first()
        if row is None:
            return None
        lines = self.session.execute(
            sa.select(t.purchase_items.c.sku, t.purchase_items.c.quantity).where(
                t.purchase_items.c.payment_id == payment_id
            )
        ).all()
        return StoredPurchase(
            payment_id=row.payment_id,
            user_id=row.user_id,
            occurred_at=row.occurred_at,
            refunded_fraction=float(row.refunded_fraction),
            recorded=bool(row.recorded),
            items={line.sku: int(line.quantity) for line in lines},
        )

    def save_purchase(self, purchase: StoredPurchase) -> None:
        values = {
            "user_id": purchase.user_id,
            "occurred_at": purchase.occurred_at,
            "refunded_fraction": purchase.refunded_fraction,
            "recorded": purchase.recorded,
        }
        insert = self._insert(t.purchases).values(payment_id=purchase.payment_id, **values)
        self.session.execute(
            insert.on_conflict_do_update(index_elements=["payment_id"], set_=values)
        )
        self.session.execute(
            t.purchase_items.delete().where(t.purchase_items.c.payment_id == purchase.payment_id)
        )
        if purchase.items:
            self.session.execute(
                t.purchase_items.insert(),
                [
                    {"payment_id": purchase.payment_id, "sku": sku, "quantity": quantity}
                    for sku, quantity in sorted(purchase.items.items())
                ],
            )

    # -- histories ----------------------------------------------------------------

    def user_history(self, user_id: str) -> dict[str, HistoryItem]:
        rows = self.session.execute(
            sa.select(
                t.user_items.c.sku, t.user_items.c.quantity, t.user_items.c.last_purchased_at
            ).where(t.user_items.c.user_id == user_id)
        ).all()
        return {row.sku: HistoryItem(float(row.quantity), row.last_purchased_at) for row in rows}

    def save_history(self, user_id: str, changes: Mapping[str, HistoryItem | None]) -> None:
        gone = sorted(sku for sku, item in changes.items() if item is None)
        kept = sorted((sku, item) for sku, item in changes.items() if item is not None)
        for chunk in _chunks(gone):
            self.session.execute(
                t.user_items.delete().where(
                    t.user_items.c.user_id == user_id, t.user_items.c.sku.in_(chunk)
                )
            )
        if kept:
            insert = self._insert(t.user_items)
            update = {
                "quantity": insert.excluded.quantity,
                "last_purchased_at": insert.excluded.last_purchased_at,
            }
            self.session.execute(
                insert.on_conflict_do_update(index_elements=["user_id", "sku"], set_=update),
                [
                    {
                        "user_id": user_id,
                        "sku": sku,
                        "quantity": item.quantity,
                        "last_purchased_at": item.last_purchased_at,
                    }
                    for sku, item in kept
                ],
            )

    # -- aggregates -------------------------------------------------------------

    def apply_item_deltas(self, deltas: Mapping[str, ItemDelta]) -> None:
        if not deltas:
            return
        insert = self._insert(t.items)
        table = t.items.c
        update = {
            "mass": table.mass + insert.excluded.mass,
            "quantity": table.quantity + insert.excluded.quantity,
            "popularity": table.popularity + insert.excluded.popularity,
            "buyers": table.buyers + insert.excluded.buyers,
        }
        rows = [
            {
                "sku": sku,
                "mass": delta.mass,
                "quantity": delta.quantity,
                "popularity": delta.popularity,
                "buyers": delta.buyers,
            }
            for sku, delta in sorted(deltas.items())
        ]
        self.session.execute(
            insert.on_conflict_do_update(index_elements=["sku"], set_=update), rows
        )
        for chunk in _chunks(sorted(deltas)):
            # Everything bought of the item was refunded: what is left is float dust.
            self.session.execute(
                t.items.delete().where(table.sku.in_(chunk), table.quantity <= NEGLIGIBLE)
            )

    def apply_pair_deltas(self, deltas: Mapping[tuple[str, str], float]) -> None:
        if not deltas:
            return
        insert = self._insert(t.item_pairs)
        update = {"weight": t.item_pairs.c.weight + insert.excluded.weight}
        rows = [
            {"sku_a": a, "sku_b": b, "weight": weight} for (a, b), weight in sorted(deltas.items())
        ]
        statement = insert.on_conflict_do_update(index_elements=["sku_a", "sku_b"], set_=update)
        for batch in _chunks(rows, 2000):
            self.session.execute(statement, list(batch))
        sources = sorted({a for a, _b in deltas})
        for skus in _chunks(sources):
            self.session.execute(
                t.item_pairs.delete().where(
                    t.item_pairs.c.sku_a.in_(skus), t.item_pairs.c.weight <= NEGLIGIBLE
                )
            )

    # -- reads for scoring -----------------------------------------------------

    def item_masses(self, skus: Iterable[str]) -> dict[str, float]:
        wanted = sorted(set(skus))
        masses: dict[str, float] = {}
        for chunk in _chunks(wanted):
            rows = self.session.execute(
                sa.select(t.items.c.sku, t.items.c.mass).where(t.items.c.sku.in_(chunk))
            ).all()
            masses.update({row.sku: float(row.mass) for row in rows})
        return masses

    def neighbours(self, skus: Iterable[str]) -> dict[str, list[Neighbour]]:
        wanted = sorted(set(skus))
        found: dict[str, list[Neighbour]] = {}
        pairs, items = t.item_pairs.c, t.items.c
        for chunk in _chunks(wanted):
            query = (
                sa.select(pairs.sku_a, pairs.sku_b, pairs.weight, items.mass, items.buyers)
                .join_from(t.item_pairs, t.items, items.sku == pairs.sku_b)
                .where(pairs.sku_a.in_(chunk), pairs.weight > NEGLIGIBLE)
            )
            for row in self.session.execute(query):
                found.setdefault(row.sku_a, []).append(
                    Neighbour(row.sku_b, float(row.weight), float(row.mass), int(row.buyers))
                )
        return found

    def popular(self, limit: int, min_buyers: int) -> list[tuple[str, float]]:
        # domain.model.popular_list, in SQL.
        query = (
            sa.select(t.items.c.sku, t.items.c.popularity)
            .where(t.items.c.buyers >= min_buyers, t.items.c.popularity > NEGLIGIBLE)
            .order_by(t.items.c.popularity.desc(), t.items.c.sku)
            .limit(limit)
        )
        return [(row.sku, float(row.popularity)) for row in self.session.execute(query)]
