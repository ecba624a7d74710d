"""The store's tests run on each backend: a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from control_api.store import Store
from control_api.store.engine import Database
from control_api.store.migrate import alembic_config

T = TypeVar("T")
# The newest migration; branches from two features each adding "0003" make several heads,
# which test_store.test_migrations_form_one_line refuses.
HEADS = ScriptDirectory.from_config(alembic_config()).get_heads()
HEAD = HEADS[0]

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "callswitch.db"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """An empty database of the backend: a file path not yet made, or a new PG database."""
    if request.param == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


@pytest.fixture
async def store(store_url: str):
    """A store on a migrated database of the backend."""
    store = await Store.open(store_url)
    yield store
    await store.close()


@pytest.fixture
async def account(store: Store):
    return await store.accounts.create("main")


@pytest.fixture
async def other(store: Store):
    """A second account: what one account sees, the other must not."""
    return await store.accounts.create("other")


async def run_on(url: str, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` in one transaction on the database at ``url``, either backend."""
    db = Database(make_url(url))
    try:
        return await db.run(work)
    finally:
        await db.dispose()


def alembic_version(connection: Connection) -> list[str]:
    return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())
