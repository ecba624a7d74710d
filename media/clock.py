"""The media clock: one 20 ms tick for every session on the monotonic clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["MediaClock"]

Tick = Callable[[], None]


class MediaClock:
    """Paces all senders from one loop timer instead of one per call.

    Ticks are scheduled at ``start + n * period`` so they do not drift; when
    the loop falls more than a few periods behind, the clock skips ahead
    rather than bursting (a burst would only overflow the peers' jitter buffers).
    """

    MAX_LAG_PERIODS = 5

    def __init__(self, period: float = 0.020) -> None:
        self.period = period
        self._subscribers: dict[int, Tick] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0
        self.skipped = 0  # periods given up after a stall of more than MAX_LAG_PERIODS
        self.max_lag = 0.0  # the latest a tick has run, in seconds

    def subscribe(self, tick: Tick) -> int:
        token = id(tick)
        self._subscribers[token] = tick
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._next = loop.time() + self.period
            self._handle = loop.call_at(self._next, self._tick)
        return token

    def unsubscribe(self, token: int) -> None:
        self._subscribers.pop(token, None)
        if not self._subscribers and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        for tick in list(self._subscribers.values()):
            tick()
        if not self._subscribers:
            self._handle = None
            return
        loop = asyncio.get_running_loop()
        self._next += self.period
        now = loop.time()
        lag = now - self._next
        if lag > self.max_lag:
            self.max_lag = lag
        if lag > self.MAX_LAG_PERIODS * self.period:
            missed = int(lag / self.period)
            self._next += missed * self.period
            self.skipped += missed
        self._handle = loop.call_at(self._next, self._tick)

    def close(self) -> None:
        self._subscribers.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
