"""Call queues as plain data: who waits in which order, for how long, and why each
caller left. No I/O, no clock: times are passed in (seconds, any epoch).

A :class:`QueueLine` is one queue's callers in the order they joined; the front is
position 1. ``<Enqueue>`` joins a caller (or is refused when the line holds
``max_size``), ``<Dial><Queue>`` takes the front, and every way out of the line is
a :class:`QueueResult` (the ``QueueResult`` parameter of ``<Enqueue action>``).
The REST resource and the wait document's parameters (``QueuePosition``,
``QueueTime``, ``AvgQueueTime``, ``CurrentQueueSize``, ``MaxQueueSize``) are
computed here, from the same members.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_QUEUE_NAME",
    "MAX_QUEUE_SIZE",
    "QueueFull",
    "QueueLine",
    "QueueResult",
    "Waiting",
    "average_wait",
    "wait_seconds",
]

DEFAULT_MAX_SIZE = 1000  # the spec's default MaxSize (Queues resource and <Enqueue>)
MAX_QUEUE_SIZE = 5000  # the spec's largest MaxSize
MAX_QUEUE_NAME = 64  # "The queue name must be 64 characters or less"


class QueueResult(StrEnum):
    """Why a caller left its queue: ``<Enqueue action>``'s ``QueueResult``."""

    BRIDGED = "bridged"  # taken by <Dial><Queue> and bridged to the dequeuer
    QUEUE_FULL = "queue-full"  # never joined: the line held max_size callers
    HANGUP = "hangup"  # the caller hung up while waiting
    LEAVE = "leave"  # <Leave> in the wait document
    REDIRECTED = "redirected"  # a REST dequeue (Members, or a Calls update) while waiting
    REDIRECTED_FROM_BRIDGED = "redirected-from-bridged"  # the same, once bridged
    ERROR = "error"  # the enqueue itself failed (a bad name, a wait URL that fails)
    SYSTEM_ERROR = "system-error"  # our failure (the store)


class QueueFull(Exception):
    """The line already holds ``max_size`` callers."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """One caller in a line: its call and when it joined (seconds)."""

    call_sid: str
    enqueued_at: float


def wait_seconds(enqueued_at: float, now: float) -> int:
    """Whole seconds waited so far (never negative: clocks of two nodes may differ)."""
    return max(0, int(now - enqueued_at))


def average_wait(enqueued: Iterable[float], now: float) -> int:
    """The average wait of the callers in a line now, in whole seconds (0 when empty):
    the Queues resource's ``average_wait_time`` and the wait document's ``AvgQueueTime``."""
    waits = [wait_seconds(at, now) for at in enqueued]
    return round(sum(waits) / len(waits)) if waits else 0


class QueueLine:
    """One queue's callers, front first. ``max_size`` may change while callers wait
    (the REST ``MaxSize``); callers already in stay, new ones are refused."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._members: dict[str, Waiting] = {}  # insertion order is the line's order

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Waiting]:
        return iter(list(self._members.values()))

    def __contains__(self, call_sid: object) -> bool:
        return call_sid in self._members

    def join(self, call_sid: str, now: float) -> int:
        """Put a caller at the back; its position (1 is the front). ``QueueFull`` when
        the line holds ``max_size``; ValueError when the call is in it already."""
        if call_sid in self._members:
            raise ValueError(f"{call_sid} is in the queue already")
        if len(self._members) >= self.max_size:
            raise QueueFull(f"the queue holds {self.max_size} callers")
        self._members[call_sid] = Waiting(call_sid, now)
        return len(self._members)

    def leave(self, call_sid: str) -> Waiting | None:
        """Take a caller out wherever it stands; None when it is not in the line."""
        return self._members.pop(call_sid, None)

    def front(self) -> Waiting | None:
        return next(iter(self._members.values()), None)

    def take_front(self) -> Waiting | None:
        """The front caller, out of the line (``<Dial><Queue>``); None when empty."""
        first = self.front()
        if first is not None:
            del self._members[first.call_sid]
        return first

    def put_back(self, member: Waiting) -> None:
        """Put a caller taken from the front back there (an agent who took it left
        before the bridge); it keeps its place and its wait, even past ``max_size``."""
        self._members = {member.call_sid: member, **self._members}

    def position(self, call_sid: str) -> int | None:
        """1 for the front; None when the caller is not in the line."""
        for number, member in enumerate(self._members.values(), start=1):
            if member.call_sid == call_sid:
                return number
        return None

    def wait_time(self, call_sid: str, now: float) -> int | None:
        member = self._members.get(call_sid)
        return None if member is None else wait_seconds(member.enqueued_at, now)

    def average_wait(self, now: float) -> int:
        return average_wait((m.enqueued_at for m in self._members.values()), now)

    def wait_params(self, call_sid: str, queue_sid: str, now: float) -> list[tuple[str, str]]:
        """The wait document's own parameters for a caller in the line."""
        position = self.position(call_sid)
        if position is None:
            raise KeyError(call_sid)
        return [
            ("QueuePosition", str(position)),
            ("QueueSid", queue_sid),
            ("QueueTime", str(self.wait_time(call_sid, now))),
            ("AvgQueueTime", str(self.average_wait(now))),
            ("CurrentQueueSize", str(len(self))),
            ("MaxQueueSize", str(self.max_size)),
        ]
