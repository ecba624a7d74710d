"""Who holds which stream connection, and for how long it may: pure bookkeeping.

A node that listens on TCP meets peers that open connections and never use
them: thousands from one host (descriptor exhaustion) or a few bytes at a time
(a slow-loris). This table is what the transports ask and tell:

* ``open(key, source)`` when a connection is accepted: ``None`` admits it, else
  the reason it must be closed at once: its source already holds
  ``max_per_source`` connections (``PER_SOURCE``), or the node holds
  ``max_total`` (``TOTAL``, the budget that keeps a reserve of descriptors for
  UDP, RTP and the health check). Trusted sources only count towards the total.
* ``received(key, …)`` after each read, with what the framer made of it.
* ``close(key)`` when the connection is gone, whoever closed it.
* ``expired()`` the connections past their deadline, for the transport to close;
  ``next_deadline()`` when to ask again.

Deadlines (``message_timeout`` and ``idle_timeout`` seconds):

* an accepted connection must complete its first message within
  ``message_timeout`` of opening (keepalives do not count);
* a message begun must be completed within ``message_timeout`` of its first byte;
* otherwise a connection may stay silent for ``idle_timeout`` after its last
  complete message or keepalive (connections we opened: after opening);
* under pressure, once the table holds three quarters of ``max_total``, an
  accepted connection may stay silent only ``pressure_idle_timeout``, until the
  table is down to half: a flood of connections that each sent one message
  then wait cannot hold the node's share for long.

The keys are whatever identifies a connection to the caller (a transport
object, say); the clock is injected. No I/O, no asyncio.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from sip.source_limits import TrustedNetworks, source_group

__all__ = ["PER_SOURCE", "TOTAL", "ConnectionTable", "Expired"]

PER_SOURCE = "per_source"  # the source holds max_per_source connections already
TOTAL = "total"  # the node holds max_total connections: the descriptor reserve is reached

MESSAGE_TIMEOUT = 30.0
IDLE_TIMEOUT = 600.0
PRESSURE_IDLE_TIMEOUT = 60.0


@dataclass(slots=True, frozen=True)
class Expired:
    """A connection past its deadline: ``incomplete`` when it failed to complete
    a message in time (a slow or silent peer), else it was idle too long."""

    key: Hashable
    source: str
    incomplete: bool


@dataclass(slots=True)
class _Entry:
    source: str
    group: str  # what its source's cap counts under (source_limits.source_group)
    counted: bool  # against its source's cap (an accepted, untrusted connection)
    inbound: bool
    opened: float
    last_message: float | None = None  # last complete message or keepalive after one
    partial_since: float | None = None  # first byte of the message not yet complete
    queued: float = 0.0  # the deadline of this entry's live item in the heap
    expired: bool = False  # reported by expired(): no deadline any more


class ConnectionTable:
    """Per-source counts and per-connection deadlines of stream connections."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_per_source: int = 100,
        max_total: int = 0,
        trusted: Callable[[str], bool] | TrustedNetworks | None = None,
        message_timeout: float = MESSAGE_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        pressure_idle_timeout: float = PRESSURE_IDLE_TIMEOUT,
    ) -> None:
        self._clock = clock
        self.max_per_source = max_per_source  # 0: no cap
        self.max_total = max_total  # 0: no cap
        if trusted is None:
            trusted = TrustedNetworks()
        self._trusted = trusted.__contains__ if isinstance(trusted, TrustedNetworks) else trusted
        self.message_timeout = message_timeout
        self.idle_timeout = idle_timeout
        self.pressure_idle_timeout = min(pressure_idle_timeout, idle_timeout)
        self.under_pressure = False
        self._entries: dict[Hashable, _Entry] = {}
        self._per_source: dict[str, int] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def held_by(self, source: str) -> int:
        """Connections ``source`` (or its IPv6 /64) holds that count against its cap."""
        return self._per_source.get(source_group(source), 0)

    def open(self, key: Hashable, source: str, *, inbound: bool = True) -> str | None:
        """Admit a connection (None) or name why it must be closed at once.

        Connections we open (``inbound=False``) are never refused: they are the
        node's own, bounded by the calls it places.
        """
        if key in self._entries:
            raise ValueError(f"connection {key!r} is already open")
        counted = inbound and not self._trusted(source)
        if inbound and self.max_total and len(self._entries) >= self.max_total:
            return TOTAL
        group = source_group(source)
        held = self._per_source.get(group, 0)
        if counted and self.max_per_source and held >= self.max_per_source:
            return PER_SOURCE
        entry = _Entry(source, group, counted, inbound, self._clock())
        self._entries[key] = entry
        if counted:
            self._per_source[group] = held + 1
        self._queue(key, entry)
        if not self.under_pressure and self.max_total and 4 * len(self) >= 3 * self.max_total:
            self.under_pressure = True  # idle deadlines come earlier: queue them all again
            for other, other_entry in self._entries.items():
                if not other_entry.expired and self._deadline(other_entry) < other_entry.queued:
                    self._queue(other, other_entry)
        return None

    def close(self, key: Hashable) -> None:
        """Forget a connection; unknown keys (refused ones) are ignored."""
        entry = self._entries.pop(key, None)
        if self.under_pressure and 2 * len(self) <= self.max_total:
            self.under_pressure = False  # deadlines come later again: re-queued lazily
        if entry is None or not entry.counted:
            return
        left = self._per_source[entry.group] - 1
        if left:
            self._per_source[entry.group] = left
        else:
            del self._per_source[entry.group]

    def received(
        self, key: Hashable, *, messages: int = 0, keepalive: bool = False, pending: bool = False
    ) -> None:
        """After a read: how many complete ``messages`` it ended, whether it
        carried a ``keepalive``, and whether a message is still incomplete."""
        entry = self._entries.get(key)
        if entry is None:
            return
        now = self._clock()
        if messages or (keepalive and entry.last_message is not None):
            entry.last_message = now
        if messages or not pending:
            entry.partial_since = None
        if pending and entry.partial_since is None:
            entry.partial_since = now
        if not entry.expired and self._deadline(entry) < entry.queued:
            self._queue(key, entry)  # earlier than the heap knows: queue it again

    def deadline_of(self, key: Hashable) -> float | None:
        entry = self._entries.get(key)
        return None if entry is None else self._deadline(entry)

    def _deadline(self, entry: _Entry) -> float:
        if entry.inbound and entry.last_message is None:
            return entry.opened + self.message_timeout
        if entry.partial_since is not None:
            return entry.partial_since + self.message_timeout
        idle = self.idle_timeout
        if self.under_pressure and entry.inbound:
            idle = self.pressure_idle_timeout
        return (entry.last_message or entry.opened) + idle

    def _queue(self, key: Hashable, entry: _Entry) -> None:
        entry.queued = self._deadline(entry)
        heapq.heappush(self._heap, (entry.queued, next(self._seq), key))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop the heap's stale items (closed connections, superseded deadlines)."""
        self._heap = [
            item
            for item in self._heap
            if (entry := self._entries.get(item[2])) is not None and item[0] == entry.queued
        ]
        heapq.heapify(self._heap)

    def next_deadline(self) -> float | None:
        """The earliest moment :meth:`expired` may have something to say."""
        heap = self._heap
        while heap:
            at, _, key = heap[0]
            entry = self._entries.get(key)
            if entry is not None and at == entry.queued:
                return at
            heapq.heappop(heap)
        return None

    def expired(self) -> list[Expired]:
        """The connections past their deadline, with their source, oldest first;
        they stay in the table until :meth:`close`. Each is reported once."""
        now = self._clock()
        heap = self._heap
        out = []
        while heap and heap[0][0] <= now:
            at, _, key = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is None or at != entry.queued:
                continue  # closed, or a later deadline superseded this item
            deadline = self._deadline(entry)
            if deadline <= now:
                entry.queued = float("inf")
                entry.expired = True
                incomplete = entry.partial_since is not None or (
                    entry.inbound and entry.last_message is None
                )
                out.append(Expired(key, entry.source, incomplete))
            else:
                self._queue(key, entry)
        return out
