"""Store lookups on the call path, cached with stale-while-revalidate.

A call must not wait behind the store's queue of writes to learn which number
it reached: a value younger than ``fresh`` seconds is used as it is; an older
one is still used at once while one background query refreshes it; only a key
never seen (or not seen for ``expire`` seconds) waits for the store. A miss (None)
is never served stale: a number created a moment ago must answer at once.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Lookup"]

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 10_000


class Lookup(Generic[K, V]):
    def __init__(
        self, load: Callable[[K], Awaitable[V]], *, fresh: float = 1.0, expire: float = 30.0
    ) -> None:
        self._load = load
        self.fresh = fresh
        self.expire = expire
        self._values: dict[K, tuple[float, V]] = {}
        self._refreshing: dict[K, asyncio.Task] = {}

    async def get(self, key: K) -> V:
        hit = self._values.get(key)
        now = time.monotonic()
        if hit is not None:
            age = now - hit[0]
            if age < self.fresh:
                return hit[1]
            if age < self.expire and hit[1] is not None:
                if key not in self._refreshing:
                    task = asyncio.get_running_loop().create_task(self._fetch(key))
                    self._refreshing[key] = task
                    task.add_done_callback(functools.partial(self._refreshed, key))
                return hit[1]
        return await self._fetch(key)

    def _refreshed(self, key: K, _task: asyncio.Task) -> None:
        self._refreshing.pop(key, None)

    def put(self, key: K, value: V) -> None:
        """A value learnt elsewhere (the store was just written): fresh from now."""
        self._values[key] = (time.monotonic(), value)

    async def _fetch(self, key: K) -> V:
        value = await self._load(key)
        if len(self._values) >= MAX_ENTRIES:
            self._values.clear()
        self._values[key] = (time.monotonic(), value)
        return value
