"""Alembic environment for the store.

``Store.open`` hands Alembic an open connection in ``config.attributes["connection"]``.
Run by hand (``alembic.command`` with ``control_api.store.migrate.alembic_config(url)``,
e.g. to autogenerate a revision), the config's ``sqlalchemy.url`` is used instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection, make_url

from control_api.store.engine import Database
from control_api.store.schema import metadata

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; batch mode writes migrations that way.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    db = Database(make_url(url))
    try:
        await db.run(run)
    finally:
        await db.dispose()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (given := config.attributes.get("connection")) is not None:
    run(given)
elif (url := config.get_main_option("sqlalchemy.url")) is not None:
    asyncio.run(run_from_url(url))
else:
    raise RuntimeError("no database: give a connection or set sqlalchemy.url")
