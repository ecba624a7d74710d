"""The store's engine: SQLAlchemy's asyncio extension on an async driver.

The store's queries are plain functions of a sync ``Connection``, handed to
``Database.run``, which runs each in one transaction through ``run_sync`` on an
``AsyncEngine`` (``sqlite+aiosqlite`` here, ``postgresql+asyncpg`` for several nodes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["Database", "NulInText"]

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
# The asyncio driver of each backend: a plain ``sqlite:///`` URL means aiosqlite.
_ASYNC_DRIVER = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


class NulInText(ValueError):
    """A text value holds a NUL character, which PostgreSQL's text types cannot store.

    Refused on SQLite too, so that what one backend keeps the other would keep as well.
    """

    def __init__(self) -> None:
        super().__init__("text values must not contain NUL characters")


class Database:
    """An engine and the way to run a unit of work on it from a coroutine."""

    def __init__(self, url: URL, *, pooled: bool = True) -> None:
        """``pooled=False`` opens a connection for each unit of work: for a caller that
        uses one store from several event loops (an asyncpg connection belongs to the loop
        that opened it), as the tests do."""
        self.dialect_name = url.get_backend_name()
        driver = _ASYNC_DRIVER.get(self.dialect_name)
        if driver is not None:
            url = url.set(drivername=f"{self.dialect_name}+{driver}")
        options: dict[str, Any] = {}
        if self.dialect_name == "sqlite":
            # One connection: SQLite has one writer anyway, and a transaction that read
            # before it writes fails at once ("database is locked", no busy wait) when
            # another connection wrote in between. Queued work waits its turn instead.
            options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 120}
        elif not pooled:
            options = {"poolclass": NullPool}
        self._async_engine = create_async_engine(url, **options)
        self.engine: Engine = self._async_engine.sync_engine
        if self.dialect_name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        event.listen(self.engine, "before_cursor_execute", _refuse_nul)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in a transaction, committed if it returns."""
        async with self._async_engine.begin() as connection:
            return await connection.run_sync(work)

    async def dispose(self) -> None:
        await self._async_engine.dispose()


def _refuse_nul(_conn, _cursor, _statement, parameters, _context, executemany) -> None:
    rows = parameters if executemany else (parameters,)
    for row in rows:
        values = row.values() if isinstance(row, dict) else row or ()
        for value in values:
            if isinstance(value, str) and "\x00" in value:
                raise NulInText()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Readers do not block the writer nor it them; a writer waits for another instead
    # of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the
    # process loses nothing committed (only a power cut can lose the last commits),
    # and writes stop waiting on the disk, which is what bounds calls per second.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # PostgreSQL enforces foreign keys; make SQLite behave the same.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
