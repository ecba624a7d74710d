"""Session timers (RFC 4028) and the user agent's own deadlines, sans-I/O.

:class:`Deadlines` is a small heap of callbacks keyed by time: the user agent
merges its earliest entry into ``next_deadline()`` and runs what is due from
``handle_timer(now)``. The session-timer values (``Session-Expires``,
``Min-SE``, the refresher) are parsed and negotiated by the functions here;
the sessions (sip/midcall.py) decide what to do when a deadline fires.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.message import Request, Response

__all__ = [
    "DEFAULT_SESSION_EXPIRES",
    "MIN_SE",
    "DeadlineToken",
    "Deadlines",
    "SessionTimer",
    "expiry_margin",
    "negotiate_uas",
    "parse_session_expires",
    "supports_timer",
]

MIN_SE = 90  # RFC 4028 §5: the smallest interval we accept, and the RFC's floor
DEFAULT_SESSION_EXPIRES = 1800  # RFC 4028 §4 recommends 30 minutes


@dataclass(slots=True)
class SessionTimer:
    """The negotiated interval and who refreshes (RFC 4028 §7.4, §9)."""

    interval: int
    refresher: str  # "uac" or "uas": roles of the dialog-creating INVITE

    def header(self) -> str:
        return f"{self.interval};refresher={self.refresher}"


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """``Session-Expires: 1800;refresher=uac`` → (1800, "uac") (RFC 4028 §4)."""
    first, *params = value.split(";")
    first = first.strip()
    if not (first.isascii() and first.isdigit()) or len(first) > 10:
        raise SipParseError(f"bad Session-Expires: {value[:40]}")
    refresher = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = param_value.strip().lower()
            if refresher not in ("uac", "uas"):
                raise SipParseError(f"bad refresher: {refresher[:10]}")
    return int(first), refresher


def supports_timer(message: Request | Response) -> bool:
    """Whether a request or response lists ``timer`` in Supported or Require."""
    for name in ("Supported", "Require"):
        for value in message.headers.get_all(name):
            if any(tag.strip().lower() == "timer" for tag in value.split(",")):
                return True
    return False


def negotiate_uas(request: Request) -> SessionTimer | int | None:
    """What a UAS makes of a dialog's (re-)INVITE or UPDATE (RFC 4028 §9).

    Returns the timer for the 2xx, None when the request asks for no timer, or
    422 when its interval is below our Min-SE. A bad header raises SipParseError.
    """
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    interval, refresher = parse_session_expires(value)
    if interval < MIN_SE:
        return 422
    if refresher is None:
        refresher = "uac" if supports_timer(request) else "uas"
    return SessionTimer(interval, refresher)


def expiry_margin(interval: int) -> float:
    """When the peer refreshes, give up at N - min(32, N/3) (RFC 4028 §10)."""
    return interval - min(32.0, interval / 3)


# What Deadlines.add returns: a one-slot cell holding the callback until it runs or
# is cancelled (cancelling empties it; the heap drops empty cells lazily).
DeadlineToken = list[Callable[[], None] | None]


class Deadlines:
    """A heap of (when, callback); cancelling marks an entry dead.

    A dead entry leaves the heap when it reaches the top, which for a session timer
    is its interval later (as long as the peer asked: RFC 4028 sets no ceiling).
    Every call that ends cancels one, so the heap is rebuilt without the dead ones
    whenever it has doubled since the last rebuild: it stays within twice the live
    entries (plus COMPACT_MIN) at an amortised constant cost per entry."""

    COMPACT_MIN = 64

    def __init__(self, wakeup: Callable[[], Callable[[float], None] | None]) -> None:
        self._heap: list[tuple[float, int, DeadlineToken]] = []
        self._counter = itertools.count()
        self._wakeup = wakeup  # returns the event loop's wake-up hook, if any
        self._compact_at = self.COMPACT_MIN

    def add(self, when: float, callback: Callable[[], None]) -> DeadlineToken:
        """Run ``callback`` at ``when``; the returned token cancels it."""
        entry: DeadlineToken = [callback]
        if len(self._heap) >= self._compact_at:
            self._compact()
        heapq.heappush(self._heap, (when, next(self._counter), entry))
        hook = self._wakeup()
        if hook is not None:
            hook(when)
        return entry

    @staticmethod
    def cancel(token: DeadlineToken | None) -> None:
        if token is not None:
            token[0] = None

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2][0] is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            callback = entry[0]
            entry[0] = None
            if callback is not None:
                callback()

    def __len__(self) -> int:
        return sum(1 for _, _, entry in self._heap if entry[0] is not None)

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if item[2][0] is not None]
        heapq.heapify(self._heap)
        self._compact_at = max(self.COMPACT_MIN, 2 * len(self._heap))
