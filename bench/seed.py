"""Seed the bench's databases straight into each service's own schema.

After each service's migrations have run: N users in auth (one shared,
cheaply hashed bench password), a profile each, a EUR wallet each funded by
`top_ups_per_user` top-ups (each a balanced ledger transaction of two
entries), so the ledger holds 2 * N * top_ups_per_user entries; and a
catalogue the recommendation model has seen bought (`seed_recommendations`),
so GET /v1/recommendations answers a full list, the one that is cached. Rows go in with
COPY (users, profiles, wallets) and INSERT ... SELECT over generate_series on
the server (top-ups, transactions, entries): 100k users and 1M entries take
well under a minute.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg2
from auth_service.adapters.hashing import Argon2PasswordHasher
from payment_service.domain import ledger
from recommendation_service.domain.model import ModelParameters, popularity_mass

BENCH_PASSWORD = "bench-password-not-a-secret"  # noqa: S105 - throwaway bench accounts
BENCH_EMAIL = "bench-{n}@bench.example.com"
CURRENCY = "EUR"
TOP_UP_AMOUNT = 10_000_000


@dataclass(frozen=True)
class SeedCounts:
    users: int
    ledger_entries: int


def _dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://", 1)


def _copy(cursor: psycopg2.extensions.cursor, table: str, rows: Iterable[str]) -> None:
    buffer = io.StringIO("".join(rows))
    cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT text)", buffer)


def user_ids(count: int) -> list[str]:
    """Stable ids, so a re-seed names the same users."""
    namespace = uuid.UUID("0b3c5a7e-7d1f-4e55-9a43-1f6d2f7c9e10")
    return [str(uuid.uuid5(namespace, str(n))) for n in range(count)]


def seed(
    *, auth_url: str, profile_url: str, payment_url: str, users: int, top_ups_per_user: int
) -> SeedCounts:
    ids = user_ids(users)
    # The auth service's own hasher with the bench's (cheap) cost, the one it runs with.
    password_hash = Argon2PasswordHasher(time_cost=1, memory_cost_kib=8192, parallelism=1).hash(
        BENCH_PASSWORD
    )
    now = "2026-01-01 00:00:00+00"
    with psycopg2.connect(_dsn(auth_url)) as connection, connection.cursor() as cursor:
        _copy(
            cursor,
            "users (id, email, password_hash, created_at, updated_at)",
            (
                f"{user_id}\t{BENCH_EMAIL.format(n=n)}\t{password_hash}\t{now}\t{now}\n"
                for n, user_id in enumerate(ids)
            ),
        )
    with psycopg2.connect(_dsn(profile_url)) as connection, connection.cursor() as cursor:
        _copy(
            cursor,
            "profiles (user_id, display_name, bio, avatar_url, locale, preferences,"
            " create_time, update_time)",
            (
                f"{user_id}\tBench user {n}\tSeeded for the benchmark.\t"
                f"https://avatars.example/{n}.png\ten-GB\t"
                f'{{"theme": "dark"}}\t{now}\t{now}\n'
                for n, user_id in enumerate(ids)
            ),
        )
        cursor.execute("ANALYZE profiles")
    entries = seed_payments(payment_url, ids, top_ups_per_user)
    return SeedCounts(users=users, ledger_entries=entries)


def seed_payments(payment_url: str, ids: list[str], top_ups_per_user: int) -> int:
    """Wallets of `ids` funded by `top_ups_per_user` top-ups each, in one payment
    database (or shard); the number of ledger entries it then holds."""
    now = "2026-01-01 00:00:00+00"
    funding = ledger.funding(CURRENCY)
    wallets = [ledger.wallet(user_id, CURRENCY) for user_id in ids]
    balance = TOP_UP_AMOUNT * top_ups_per_user
    with psycopg2.connect(_dsn(payment_url)) as connection, connection.cursor() as cursor:
        _copy(
            cursor,
            "accounts (id, kind, owner, currency, created_at)",
            [f"{funding.id}\texternal\t{funding.owner}\t{CURRENCY}\t{now}\n"]
            + [f"{w.id}\twallet\t{w.owner}\t{CURRENCY}\t{now}\n" for w in wallets],
        )
        _copy(
            cursor,
            "balances (account_id, amount, updated_at)",
            (f"{w.id}\t{balance}\t{now}\n" for w in wallets),
        )
        cursor.execute(
            "CREATE TEMPORARY TABLE seed_top_ups AS"
            " SELECT gen_random_uuid()::text AS id, gen_random_uuid()::text AS tx,"
            " a.owner AS user_id, a.id AS wallet"
            " FROM accounts a CROSS JOIN generate_series(1, %s)"
            " WHERE a.kind = 'wallet'",
            (top_ups_per_user,),
        )
        cursor.execute(
            "INSERT INTO top_ups (id, user_id, amount, currency, created_at)"
            " SELECT id, user_id, %s, %s, %s FROM seed_top_ups",
            (TOP_UP_AMOUNT, CURRENCY, now),
        )
        cursor.execute(
            "INSERT INTO ledger_transactions (id, kind, reference_id, created_at)"
            " SELECT tx, 'top_up', id, %s FROM seed_top_ups",
            (now,),
        )
        cursor.execute(
            "INSERT INTO ledger_entries (transaction_id, account_id, currency, amount)"
            " SELECT tx, account, %s, amount FROM ("
            "  SELECT tx, %s AS account, -%s::bigint AS amount, id FROM seed_top_ups"
            "  UNION ALL SELECT tx, wallet, %s::bigint, id FROM seed_top_ups"
            " ) AS entries ORDER BY id",
            (CURRENCY, funding.id, TOP_UP_AMOUNT, TOP_UP_AMOUNT),
        )
        cursor.execute("SELECT count(*) FROM ledger_entries")
        entries = int(cursor.fetchone()[0])
    connection = psycopg2.connect(_dsn(payment_url))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        connection.close()
    return entries


def seed_recommendations(recommendation_url: str, skus: int = 200) -> None:
    """`skus` items (sku-0002 on: the payment scenarios buy sku-0001) bought by
    3 to several hundred distinct users each, today, into the model's `items`
    table, so every user is recommended a full popular list (the service
    caches up to 100 items per user). Without it the bench's only purchases
    are scenario 5's sku-0001, which its buyers are never recommended: their
    list is empty, and an empty list is not cached (every read is scored).
    """
    parameters = ModelParameters()
    today = popularity_mass(1.0, datetime.now(UTC), parameters)
    rows = []
    for n in range(skus):
        buyers = max(parameters.popular_min_buyers, 600 - 3 * n)
        rows.append(f"sku-{n + 2:04d}\t{buyers}\t{buyers}\t{buyers * today!r}\t{buyers}\n")
    with psycopg2.connect(_dsn(recommendation_url)) as connection, connection.cursor() as cursor:
        _copy(cursor, "items (sku, mass, quantity, popularity, buyers)", rows)
        cursor.execute("ANALYZE items")
