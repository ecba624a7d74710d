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
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from control_api.store.engine import Database, _sqlite_pragmas

__all__ = ["GroupCommit", "group_commit"]

T = TypeVar("T")
MAX_BATCH = 500

_GROUPS: weakref.WeakKeyDictionary[Database, GroupCommit] = weakref.WeakKeyDictionary()


def group_commit(db: Database) -> GroupCommit:
    """The one ``GroupCommit`` of ``db`` (shared, so that all its users batch together)."""
    group = _GROUPS.get(db)
    if group is None:
        group = _GROUPS[db] = GroupCommit(db)
    return group


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

    async def _transaction(self, work: Callable[[Connection], T]) -> T:
        if self._sync is None:
            return await self.db.run(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, work)

    def _in_thread(self, work: Callable[[Connection], T]) -> T:
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

            def work_all(c: Connection, batch=batch) -> list[tuple[bool, Any]]:
                return [(True, work(c)) for work, _ in batch]

            try:
                try:
                    results = await self._transaction(work_all)
                except Exception:
                    if len(batch) == 1:
                        raise
                    # One unit failed and took the batch's transaction with it: run each
                    # alone, so that it alone fails.
                    results = [await self._alone(work) for work, _ in batch]
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
