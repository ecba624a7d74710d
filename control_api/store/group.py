"""Group commit: many small units of work from many coroutines in one transaction.

SQLite has one writer and every transaction costs a round trip through the driver's
thread and a WAL append; a message's life is several small writes. Work handed to
``GroupCommit.run`` waits (a few hundred microseconds at most) for the others queued
at the same time and all of them commit together. When one unit raises, the batch's
transaction is rolled back and each unit is run again in a transaction of its own,
so the one that fails (a unique key taken, say) fails alone; its coroutine gets the
exception, the others their results. Durable as before: ``run`` returns
only after the transaction holding the work has committed.

On SQLite the batch runs on a connection of its own in one worker thread, with the
plain sqlite3 driver: aiosqlite hands every statement to its thread and back, and on
one core that handoff (the GIL passed between two threads) costs more than the
statement. Here a whole batch costs one handoff. WAL lets this connection and the
store's share the file; SQLite's write lock (with a busy timeout) orders them.

``GroupCommit.insert`` queues one row for a table: the rows for one table queued in
one batch go to the database as one executemany, where the table's first row was
queued (SQLAlchemy builds and compiles the statement once, not once a row).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Table, create_engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from control_api.store.engine import Database, _refuse_nul, _sqlite_pragmas

__all__ = ["GroupCommit", "close_group", "group_commit"]

T = TypeVar("T")
MAX_BATCH = 500

_GROUPS: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()


def group_commit(db: Database) -> GroupCommit:
    """The one ``GroupCommit`` of ``db`` (shared, so that all its users batch together)."""
    group = _GROUPS.get(db)
    if group is None:
        group = _GROUPS[db] = GroupCommit(db)
    return group


def close_group(db: Database) -> None:
    """Close ``db``'s ``GroupCommit``, if it has one (its thread and connection)."""
    group = _GROUPS.pop(db, None)
    if group is not None:
        group.close()


class GroupCommit:
    """Batches units of work (functions of a Connection) into shared transactions."""

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        url = db.engine.url
        if db.dialect_name == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                pool_size=1,
                max_overflow=0,
                connect_args={"check_same_thread": False},
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            event.listen(self._sync, "before_cursor_execute", _refuse_nul)  # as the store does
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
        self._queue: list[tuple[Callable[[Connection], Any], asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.units = 0

    async def run(self, work: Callable[[Connection], T]) -> T:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def insert(
        self, table: Table, row: dict[str, Any], *, ignore_existing: bool = False
    ) -> None:
        """Insert ``row`` into ``table``, batched with other rows for it (module doc).
        ``ignore_existing``: a row whose unique key is taken is skipped (ON CONFLICT DO
        NOTHING), not an error."""
        await self.run(_Row(table, row, ignore_existing))

    async def _transaction(self, work: Callable[[Connection], T]) -> T:
        if self._sync is None:
            return await self.db.run(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, work)

    def _in_thread(self, work: Callable[[Connection], T]) -> T:
        assert self._sync is not None  # only handed to the thread when there is one
        with self._sync.begin() as connection:
            return work(connection)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    async def _alone(self, work) -> tuple[bool, Any]:
        try:
            return True, await self._transaction(work)
        except Exception as exc:
            return False, exc

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]

            units = _merge_rows([work for work, _ in batch])

            def work_all(c: Connection, units=units) -> list[tuple[bool, Any]]:
                return [(True, unit(c)) for unit in units]

            try:
                try:
                    results = await self._transaction(work_all)
                except Exception:
                    if len(batch) == 1:
                        raise
                    # One unit failed and took the batch's transaction with it: run each
                    # alone, so that it alone fails.
                    results = [await self._alone(work) for work, _ in batch]
                else:
                    results = [
                        (True, None) if isinstance(work, _Row) else result
                        for (work, _), result in zip(batch, results, strict=True)
                    ]
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError(exc)
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            self.batches += 1
            self.units += len(batch)
            for (ok, value), (_, future) in zip(results, batch, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)


class _Row:
    """One row for ``GroupCommit.insert``; run alone, a plain INSERT."""

    __slots__ = ("ignore_existing", "row", "table")

    def __init__(self, table: Table, row: dict[str, Any], ignore_existing: bool) -> None:
        self.table = table
        self.row = row
        self.ignore_existing = ignore_existing

    def __call__(self, c: Connection) -> None:
        c.execute(_insert(c, self.table, self.ignore_existing), [self.row])


class _Rows:
    """Every row a batch holds for one table, inserted at the first one's place."""

    __slots__ = ("ignore_existing", "rows", "table")

    def __init__(self, table: Table, ignore_existing: bool) -> None:
        self.table = table
        self.ignore_existing = ignore_existing
        self.rows: list[dict[str, Any]] = []

    def __call__(self, c: Connection) -> None:
        c.execute(_insert(c, self.table, self.ignore_existing), self.rows)


def _insert(c: Connection, table: Table, ignore_existing: bool):
    if not ignore_existing:
        return insert(table)
    if c.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _merge_rows(works: list[Callable[[Connection], Any]]) -> list[Callable[[Connection], Any]]:
    """The batch as it runs: one unit per work, except that rows for one table (with
    the same columns) go in one executemany, and their later places run nothing.
    Same length as ``works``."""
    merged: dict[tuple[Table, frozenset[str], bool], _Rows] = {}
    units: list[Callable[[Connection], Any]] = []
    for work in works:
        if not isinstance(work, _Row):
            units.append(work)
            continue
        key = (work.table, frozenset(work.row), work.ignore_existing)
        rows = merged.get(key)
        if rows is None:
            rows = merged[key] = _Rows(work.table, work.ignore_existing)
            units.append(rows)
        else:
            units.append(_nothing)
        rows.rows.append(work.row)
    return units


def _nothing(c: Connection) -> None:
    return None
