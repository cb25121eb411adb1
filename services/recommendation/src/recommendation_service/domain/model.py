"""The recommendation model, as plain Python: no storage, no transport.

Implicit feedback. A user's preference for an item grows with the quantity
they bought and kept (refunds take it back): ``p = log2(1 + quantity)``, so one
unit counts 1 and bulk purchases count sub-linearly.

Item-item co-occurrence, weighted by user activity::

    C(a, b) = sum over users u of  w(u) * p(u, a) * p(u, b)      (a != b)
    w(u)    = (sum of u's preferences) ** -gamma                   (heavy users count less)
    n(a)    = sum over users u of  p(u, a)                         (the item's preference mass)

Similarity, corrected for popularity on both ends::

    sim(a -> b) = C(a, b) / (n(a) ** alpha * n(b) ** beta)

and a user's score of a candidate b is ``sum over a in history of p(u, a) *
sim(a -> b)``. The exponents (gamma 0.75, alpha 1.0, beta 0.6) were chosen by
the offline evaluation in bench/recommendation, against plain cosine and
Jaccard (see bench/README.md).

Everything is additive over users, so the model is updated incrementally: an
event changes one user's history and `history_change` gives the exact deltas
of C and n. Applying every event's delta equals recounting from scratch.

Popularity (the cold-start fallback) counts distinct buyers, never quantity:
one buyer of a million units weighs what one buyer of one unit does, so a
single account cannot push an item into everyone's list. Each user who keeps
an item adds one, decayed from their latest purchase of it: the item's
popularity is ``sum over its buyers u of exp((last purchase of u - EPOCH) /
tau)`` (the decay factor of "now" is common to every item, so ranking needs
no recomputation), reported as that value times ``exp(-(now - EPOCH) / tau)``:
the number of buyers, recent ones counting fully. An item is popular only
once `popular_min_buyers` distinct users keep it (`popular_list`).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

PERSONAL = "personal"
POPULAR = "popular"

# Below this a stored weight is a float remainder of a full refund: gone.
NEGLIGIBLE = 1e-9

# The reference time of stored popularity masses. With a 14-day half-life the
# masses stay below the float range until about 2064.
POPULARITY_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ModelParameters:
    """The knobs of the model; the defaults are the offline evaluation's choice."""

    user_weight_exponent: float = 0.75
    source_exponent: float = 1.0
    target_exponent: float = 0.6
    popularity_half_life_days: float = 14.0
    # Distinct buyers an item needs before it is shown to everyone as popular.
    popular_min_buyers: int = 3
    # Distinct buyers an item needs before it is recommended from co-purchases:
    # below it, one account buying an item beside a popular one would make it
    # the top personal pick of that popular item's every buyer.
    personal_min_buyers: int = 3
    # Only the caller's most recently bought items are used to score (bounds the work).
    history_limit: int = 200
    exclude_purchased: bool = True

    @property
    def popularity_tau_seconds(self) -> float:
        return self.popularity_half_life_days * 86_400.0 / math.log(2.0)


@dataclass(frozen=True)
class Recommendation:
    sku: str
    score: float
    source: str


@dataclass(frozen=True)
class Neighbour:
    """A co-occurring item as stored: its sku, C(a, sku), its mass n(sku) and
    how many distinct users keep it."""

    sku: str
    weight: float
    mass: float
    buyers: int


@dataclass(frozen=True)
class HistoryItem:
    """What one user kept of one item, and when they last bought it."""

    quantity: float
    last_purchased_at: datetime


@dataclass(frozen=True)
class ItemDelta:
    """The change of one item's aggregates: n (mass), quantity, distinct
    buyers (users who keep some of it) and popularity mass."""

    mass: float = 0.0
    quantity: float = 0.0
    popularity: float = 0.0
    buyers: int = 0


@dataclass
class ModelDelta:
    """Every change one event makes to the shared model."""

    items: dict[str, ItemDelta]
    # Both directions: (a, b) and (b, a) carry the same delta.
    pairs: dict[tuple[str, str], float]


def preference(quantity: float) -> float:
    """The implicit-feedback preference of a kept quantity (0 when nothing is kept)."""
    return math.log2(1.0 + quantity) if quantity > NEGLIGIBLE else 0.0


def preferences(history: Mapping[str, float]) -> dict[str, float]:
    """sku -> preference for a sku -> kept-quantity mapping, without empty entries."""
    return {sku: p for sku, quantity in history.items() if (p := preference(quantity)) > 0}


def user_weight(prefs: Mapping[str, float], exponent: float) -> float:
    """w(u): the weight of one user's pairs (0 for a user with no preferences)."""
    mass = sum(prefs.values())
    return mass**-exponent if mass > NEGLIGIBLE else 0.0


def history_change(
    old: Mapping[str, float], new: Mapping[str, float], parameters: ModelParameters
) -> ModelDelta:
    """The exact change of n and C when one user's preferences go from `old` to `new`.

    Costs O(|history|^2): a user's weight depends on their whole history, so
    every pair of it moves when one item does.
    """
    exponent = parameters.user_weight_exponent
    w_old, w_new = user_weight(old, exponent), user_weight(new, exponent)
    items: dict[str, ItemDelta] = {}
    for sku in old.keys() | new.keys():
        change = new.get(sku, 0.0) - old.get(sku, 0.0)
        if change:
            items[sku] = ItemDelta(mass=change)
    pairs: dict[tuple[str, str], float] = {}
    skus = sorted(old.keys() | new.keys())
    for index, a in enumerate(skus):
        old_a, new_a = old.get(a, 0.0), new.get(a, 0.0)
        for b in skus[index + 1 :]:
            delta = w_new * new_a * new.get(b, 0.0) - w_old * old_a * old.get(b, 0.0)
            if delta:
                pairs[(a, b)] = delta
                pairs[(b, a)] = delta
    return ModelDelta(items=items, pairs=pairs)


def popularity_mass(quantity: float, purchased_at: datetime, parameters: ModelParameters) -> float:
    """`quantity` (one buyer: 1) at `purchased_at`, as a stored popularity mass."""
    elapsed = (purchased_at - POPULARITY_EPOCH).total_seconds()
    return quantity * math.exp(elapsed / parameters.popularity_tau_seconds)


def buyer_change(
    old: HistoryItem | None, new: HistoryItem | None, parameters: ModelParameters
) -> ItemDelta:
    """How one user's entry for an item (None: they keep none of it) moving
    from `old` to `new` changes the item's buyers and popularity mass.

    Quantity plays no part: a buyer counts once, from their latest purchase.
    """
    buyers = (new is not None) - (old is not None)
    popularity = 0.0
    if new is not None:
        popularity += popularity_mass(1.0, new.last_purchased_at, parameters)
    if old is not None:
        popularity -= popularity_mass(1.0, old.last_purchased_at, parameters)
    return ItemDelta(buyers=buyers, popularity=popularity)


def popular_list(
    items: Iterable[tuple[str, int, float]], limit: int, parameters: ModelParameters
) -> list[tuple[str, float]]:
    """(sku, buyers, popularity mass) -> the popular list, best first: items
    with at least `popular_min_buyers` buyers, by popularity, ties by sku.
    The repository runs the same rule in SQL."""
    eligible = (
        (sku, mass)
        for sku, buyers, mass in items
        if buyers >= parameters.popular_min_buyers and mass > NEGLIGIBLE
    )
    return heapq.nsmallest(limit, eligible, key=lambda entry: (-entry[1], entry[0]))


def popularity_now(mass: float, now: datetime, parameters: ModelParameters) -> float:
    """A stored popularity mass as the decayed number of buyers at `now`."""
    elapsed = (now - POPULARITY_EPOCH).total_seconds()
    return mass * math.exp(-elapsed / parameters.popularity_tau_seconds)


def recent_history(history: Mapping[str, HistoryItem], limit: int) -> dict[str, float]:
    """The preferences of the `limit` most recently bought items still kept."""
    kept = [(item.last_purchased_at, sku, item) for sku, item in history.items()]
    kept = [entry for entry in kept if entry[2].quantity > NEGLIGIBLE]
    kept.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return {sku: preference(item.quantity) for _at, sku, item in kept[:limit]}


def personal_scores(
    prefs: Mapping[str, float],
    source_masses: Mapping[str, float],
    neighbours: Mapping[str, Iterable[Neighbour]],
    parameters: ModelParameters,
) -> dict[str, float]:
    """score(b) = sum over a in `prefs` of p(a) * C(a, b) / (n(a)^alpha * n(b)^beta),
    for candidates b with at least `personal_min_buyers` buyers."""
    alpha, beta = parameters.source_exponent, parameters.target_exponent
    min_buyers = parameters.personal_min_buyers
    scores: dict[str, float] = defaultdict(float)
    for sku, p in prefs.items():
        mass = source_masses.get(sku, 0.0)
        if mass <= NEGLIGIBLE or p <= 0:
            continue
        scale = p / mass**alpha
        for neighbour in neighbours.get(sku, ()):
            if neighbour.buyers < min_buyers:
                continue
            if neighbour.weight > NEGLIGIBLE and neighbour.mass > NEGLIGIBLE:
                scores[neighbour.sku] += scale * neighbour.weight / neighbour.mass**beta
    return dict(scores)


def top(
    scores: Mapping[str, float], limit: int, exclude: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """The `limit` best (sku, score), best first; ties by sku for a stable order."""
    excluded = set(exclude)
    candidates = ((sku, score) for sku, score in scores.items() if sku not in excluded)
    return heapq.nsmallest(limit, candidates, key=lambda entry: (-entry[1], entry[0]))


def recommend(
    *,
    history: Mapping[str, HistoryItem],
    personal: Mapping[str, float],
    popular: Iterable[tuple[str, float]],
    limit: int,
    parameters: ModelParameters,
) -> list[Recommendation]:
    """Personal items first, then popular ones, never an item twice.

    `personal` are the candidates' scores (see `personal_scores`), `popular`
    the (sku, decayed popularity) list best first. Items the user kept are
    left out when the parameters say so.
    """
    bought = {sku for sku, item in history.items() if item.quantity > NEGLIGIBLE}
    excluded = bought if parameters.exclude_purchased else set()
    result = [
        Recommendation(sku, score, PERSONAL)
        for sku, score in top(personal, limit, excluded)
        if score > 0
    ]
    seen = {item.sku for item in result} | excluded
    for sku, score in popular:
        if len(result) >= limit:
            break
        if sku not in seen and score > 0:
            result.append(Recommendation(sku, score, POPULAR))
            seen.add(sku)
    return result
