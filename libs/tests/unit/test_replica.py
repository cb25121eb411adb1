from typing import ClassVar

from pydantic_settings import SettingsConfigDict
from switchyard_kit import Database, RedisCache, ServiceSettings
from switchyard_kit._replica import WalHistory, parse_lsn


def test_lsn_text_orders_like_wal_positions() -> None:
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")


def history() -> WalHistory:
    return WalHistory(untrusted_for=6, keep_seconds=20)


def test_a_replica_is_untrusted_until_it_replays_the_first_sample() -> None:
    wal = history()
    wal.add(100.0, 5_000)
    assert wal.lag(100.0, 4_000) == 6.0  # over a 5 s bound, though just started
    assert wal.lag(100.0, 5_000) == 0.0


def test_lag_is_the_age_of_the_oldest_wal_not_replayed() -> None:
    wal = history()
    wal.add(100.0, 5_000)
    wal.add(101.0, 6_000)
    wal.add(102.0, 7_000)
    assert wal.lag(103.5, 6_000) == 1.5  # 7,000 was there at 102
    assert wal.lag(103.5, 5_500) == 2.5
    assert wal.lag(103.5, 7_000) == 0.0


def test_an_idle_primary_is_no_lag() -> None:
    # No new WAL for an hour: nothing to replay, so no lag (now() -
    # pg_last_xact_replay_timestamp() would say an hour).
    wal = history()
    wal.add(100.0, 5_000)
    wal.add(3_700.0, 5_000)
    assert wal.lag(3_700.0, 5_000) == 0.0


def test_a_replica_behind_the_kept_history_still_lags() -> None:
    wal = history()
    wal.add(100.0, 5_000)
    for second in range(101, 200):
        wal.add(float(second), 5_000 + second)
    lag = wal.lag(200.0, 4_000)
    assert lag is not None
    assert lag >= 20.0


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"
    default_port: ClassVar[int] = 50099
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore", frozen=True)


def marks_namespace(primary: str) -> str:
    settings = ExampleSettings(
        database_url=primary,
        database_read_url="postgresql+psycopg2://app@replica:5432/db",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    database = Database.for_service(settings)  # connects to nothing yet
    assert database.replica is not None
    assert isinstance(database.replica.shared_marks, RedisCache)
    name = database.replica.shared_marks.name
    database.dispose()
    return name


def test_pods_of_one_database_share_write_marks_and_shards_do_not() -> None:
    # WAL positions of two servers are not comparable: one shard's mark must
    # never decide a read on another.
    shard_1 = marks_namespace("postgresql+psycopg2://app:pw@shard-1:5432/payment")
    assert shard_1 == marks_namespace("postgresql+psycopg2://app:other@shard-1:5432/payment")
    assert shard_1 != marks_namespace("postgresql+psycopg2://app:pw@shard-2:5432/payment")
    assert shard_1 != marks_namespace("postgresql+psycopg2://app:pw@shard-1:5432/payment_2")
