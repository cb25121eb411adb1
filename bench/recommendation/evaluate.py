"""Offline evaluation of the recommendation model on MovieLens-100k.

Protocol: every rating is an implicit "purchase" of quantity 1 at the rating's
time; each user's ratings are split at random 80/20 (train/test) with a fixed
seed; the model learns from the train part and recommends 10 items per user
among those the user has not rated in train. Reported: precision@10,
recall@10, nDCG@10 (binary relevance: the user's test items) averaged over
users, and catalogue coverage (distinct items recommended / items).

The model is the service's own code (recommendation_service.domain.model):
the same preference, user weighting, co-occurrence, similarity and ranking
functions the worker and the gRPC server run. Each user's train history is
applied as one history change, which equals applying the purchases one by
one (the update is exact and additive; see the unit tests).

The data comes from the `recbole` wheel (dataset_example/ml-100k), installed
with --no-deps in a separate venv and read by path: see bench/README.md.

    bench/recommendation/setup.sh
    bench/.venv/bin/python bench/recommendation/evaluate.py --seed 42
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "services" / "recommendation" / "src"))

from recommendation_service.domain.model import (  # noqa: E402 - after the path set-up
    HistoryItem,
    ModelParameters,
    Neighbour,
    history_change,
    personal_scores,
    popular_list,
    preferences,
    recent_history,
    recommend,
    top,
)

K = 10


def dataset_path() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("recbole is not installed here: run bench/recommendation/setup.sh")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "dataset_example" / "ml-100k" / "ml-100k.inter"


@dataclass(frozen=True)
class Rating:
    item: str
    at: datetime


def load(path: Path) -> dict[str, list[Rating]]:
    users: dict[str, list[Rating]] = defaultdict(list)
    with path.open() as lines:
        next(lines)  # user_id:token item_id:token rating:float timestamp:float
        for line in lines:
            user, item, _rating, stamp = line.rstrip("\n").split("\t")
            users[user].append(Rating(item, datetime.fromtimestamp(float(stamp), UTC)))
    return dict(users)


def split(
    users: Mapping[str, list[Rating]], seed: int, train_share: float = 0.8
) -> tuple[dict[str, list[Rating]], dict[str, set[str]]]:
    rng = random.Random(seed)  # noqa: S311 - seeded, reproducible data
    train: dict[str, list[Rating]] = {}
    test: dict[str, set[str]] = {}
    for user in sorted(users):
        ratings = sorted(users[user], key=lambda r: r.item)
        rng.shuffle(ratings)
        cut = round(len(ratings) * train_share)
        train[user], test[user] = ratings[:cut], {r.item for r in ratings[cut:]}
    return train, test


@dataclass
class Scores:
    precision: float
    recall: float
    ndcg: float
    coverage: float


def evaluate(
    recommender: Callable[[str], list[str]], test: Mapping[str, set[str]], catalogue: int
) -> Scores:
    precision = recall = ndcg = 0.0
    shown: set[str] = set()
    users = [user for user in sorted(test) if test[user]]
    for user in users:
        items = recommender(user)[:K]
        shown.update(items)
        hits = [1.0 if item in test[user] else 0.0 for item in items]
        precision += sum(hits) / K
        recall += sum(hits) / len(test[user])
        dcg = sum(hit / math.log2(rank + 2) for rank, hit in enumerate(hits))
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(K, len(test[user]))))
        ndcg += dcg / ideal
    n = len(users)
    return Scores(precision / n, recall / n, ndcg / n, len(shown) / catalogue)


class CooccurrenceModel:
    """The service's model held in dicts: what the database tables hold."""

    def __init__(self, parameters: ModelParameters) -> None:
        self.parameters = parameters
        self.mass: dict[str, float] = defaultdict(float)
        self.buyers: Counter[str] = Counter()
        self.pairs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.histories: dict[str, dict[str, HistoryItem]] = {}

    def learn(self, user: str, ratings: list[Rating]) -> None:
        history = {r.item: HistoryItem(1.0, r.at) for r in ratings}
        self.histories[user] = history
        self.buyers.update(history.keys())
        delta = history_change(
            {}, preferences({s: h.quantity for s, h in history.items()}), self.parameters
        )
        for sku, item_delta in delta.items.items():
            self.mass[sku] += item_delta.mass
        for (a, b), weight in delta.pairs.items():
            self.pairs[a][b] += weight

    def freeze(self) -> None:
        """The rows a scoring query reads, built once (as the database holds them)."""
        self.neighbours = {
            a: [Neighbour(b, w, self.mass[b], self.buyers[b]) for b, w in row.items()]
            for a, row in self.pairs.items()
        }

    def recommend(self, user: str, popular: list[tuple[str, float]]) -> list[str]:
        history = self.histories.get(user, {})
        prefs = recent_history(history, self.parameters.history_limit)
        neighbours = {sku: self.neighbours.get(sku, []) for sku in prefs}
        personal = personal_scores(prefs, self.mass, neighbours, self.parameters)
        ranked = recommend(
            history=history, personal=personal, popular=popular, limit=K, parameters=self.parameters
        )
        return [item.sku for item in ranked]


def jaccard_recommender(
    train: Mapping[str, list[Rating]], popular: list[tuple[str, float]]
) -> Callable[[str], list[str]]:
    """Item-kNN with Jaccard similarity, the other textbook choice (binary histories)."""
    counts: Counter[str] = Counter()
    together: dict[str, Counter[str]] = defaultdict(Counter)
    for ratings in train.values():
        items = sorted({r.item for r in ratings})
        counts.update(items)
        for a in items:
            row = together[a]
            for b in items:
                if a != b:
                    row[b] += 1

    def recommend_for(user: str) -> list[str]:
        seen = {r.item for r in train[user]}
        scores: dict[str, float] = defaultdict(float)
        for a in seen:
            for b, c in together[a].items():
                scores[b] += c / (counts[a] + counts[b] - c)
        ranked = [sku for sku, _ in top(scores, K, seen)]
        return (
            ranked
            + [sku for sku, _ in popular if sku not in seen and sku not in ranked][
                : K - len(ranked)
            ]
        )

    return recommend_for


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--variants", action="store_true", help="also the similarity variants (slower)"
    )
    args = parser.parse_args()

    users = load(dataset_path())
    catalogue = len({r.item for ratings in users.values() for r in ratings})
    train, test = split(users, args.seed)
    # Distinct buyers per item (a user rates an item once, so this is also the count).
    counts = Counter(item for ratings in train.values() for item in {r.item for r in ratings})
    popular = sorted(counts.items(), key=lambda entry: (-entry[1], entry[0]))
    chosen = ModelParameters()
    # The service's popular list (the filler after personal items): the same
    # rule, popular_min_buyers included; time decay is left out here as before.
    popular_f = popular_list(
        ((sku, count, float(count)) for sku, count in counts.items()), len(counts), chosen
    )
    rng = random.Random(args.seed)  # noqa: S311 - seeded, reproducible data
    items = sorted(counts)

    def random_pick(user: str) -> list[str]:
        seen = {r.item for r in train[user]}
        return rng.sample([i for i in items if i not in seen], K)

    def most_popular(user: str) -> list[str]:
        seen = {r.item for r in train[user]}
        return [sku for sku, _ in popular if sku not in seen][:K]

    rows: list[tuple[str, Scores, float]] = []

    def run(name: str, recommender: Callable[[str], list[str]]) -> None:
        started = time.perf_counter()
        rows.append((name, evaluate(recommender, test, catalogue), time.perf_counter() - started))
        print(f"  done: {name}", file=sys.stderr, flush=True)

    def model(parameters: ModelParameters) -> Callable[[str], list[str]]:
        built = CooccurrenceModel(parameters)
        for user, ratings in train.items():
            built.learn(user, ratings)
        built.freeze()
        return lambda user: built.recommend(user, popular_f)

    run("random", random_pick)
    run("most popular", most_popular)
    if args.variants:
        run("item-kNN, Jaccard", jaccard_recommender(train, popular_f))
        run(
            "item-kNN, cosine (gamma 0, alpha = beta = 0.5)",
            model(
                replace(chosen, user_weight_exponent=0.0, source_exponent=0.5, target_exponent=0.5)
            ),
        )
        run(
            "cosine + user weighting (gamma 0.75)",
            model(replace(chosen, source_exponent=0.5, target_exponent=0.5)),
        )
    run(
        f"service model (gamma {chosen.user_weight_exponent}, alpha {chosen.source_exponent}, "
        f"beta {chosen.target_exponent}, buyers: popular >= {chosen.popular_min_buyers}, "
        f"personal >= {chosen.personal_min_buyers})",
        model(chosen),
    )

    print(
        f"\nMovieLens-100k, random 80/20 split per user, seed {args.seed}, {len(test)} users, "
        f"{catalogue} items\n"
    )
    print("| recommender | P@10 | R@10 | nDCG@10 | coverage |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, scores, _seconds in rows:
        print(
            f"| {name} | {scores.precision:.4f} | {scores.recall:.4f} | {scores.ndcg:.4f} "
            f"| {scores.coverage:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
