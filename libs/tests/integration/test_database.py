from collections.abc import Callable

import pytest
from sqlalchemy import text
from switchyard_kit import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/example.db"
    create: Callable[[str], str] = request.getfixturevalue("create_postgres_database")
    return create("kit")


def test_a_database_answers_and_commits(database_url: str) -> None:
    database = Database(database_url)
    assert database.ping()
    with database.session() as session, session.begin():
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
    with database.read_session() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    database.dispose()


def test_an_unreachable_database_pings_false_quickly() -> None:
    database = Database("postgresql+psycopg2://postgres@127.0.0.1:1/none")
    assert database.ping() is False
    database.dispose()
