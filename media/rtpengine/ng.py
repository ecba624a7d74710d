"""rtpengine's ng control protocol over UDP, sans-I/O (docs/rtpengine.md).

A message is a cookie, one space and a bencoded dictionary; the reply carries
the request's cookie, which is how replies find their requests and how
rtpengine recognises a retransmission (it answers a repeated cookie from its
cache instead of acting twice). :class:`NgClient` is the client side for one
rtpengine instance: :meth:`NgClient.request` frames a command and returns the
datagram to send; :meth:`NgClient.on_datagram` matches a reply; the timer
(:meth:`NgClient.next_deadline`, :meth:`NgClient.on_timer`) resends an
unanswered request every ``interval`` seconds and gives up after ``attempts``
sends, as Kamailio's rtpengine module does (``rtpengine_tout_ms``,
``rtpengine_retr``). No clock, socket or randomness of its own: the time is
passed in, and cookies come from the ``new_cookie`` callable.

Whatever rtpengine (or anyone else) sends back is parsed defensively: a
datagram that is not a reply to a pending request is counted and dropped.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from media.rtpengine.bencode import BencodeError, Value, decode, encode

__all__ = [
    "Completed",
    "Message",
    "NgClient",
    "Send",
    "TimedOut",
    "frame",
    "parse",
]

Message = dict[str, Value]

MAX_DATAGRAM = 65507


@dataclass(slots=True, frozen=True)
class Send:
    """A datagram for the instance (a request or a retransmission of one)."""

    data: bytes


@dataclass(slots=True, frozen=True)
class Completed:
    """The reply to the request with ``cookie``."""

    cookie: str
    reply: Message


@dataclass(slots=True, frozen=True)
class TimedOut:
    """No reply to the request with ``cookie`` after every attempt."""

    cookie: str


Output = Send | Completed | TimedOut


def frame(cookie: str, message: Message) -> bytes:
    """A request or reply on the wire: ``cookie``, a space, the bencoded dictionary."""
    if not cookie or " " in cookie:
        raise ValueError("cookie must be non-empty and contain no space")
    return cookie.encode("ascii") + b" " + encode(message)


def parse(data: bytes) -> tuple[str, Message]:
    """A datagram's cookie and dictionary; :class:`BencodeError` when it is neither."""
    space = data.find(b" ")
    if space <= 0:
        raise BencodeError("no cookie")
    cookie = data[:space].decode("ascii", "replace")
    body = decode(data[space + 1 :])
    if not isinstance(body, dict):
        raise BencodeError("body is not a dictionary")
    return cookie, body


@dataclass(slots=True)
class _Pending:
    data: bytes
    sent: int
    deadline: float


@dataclass(slots=True)
class NgStats:
    """Counters read from outside (``/metrics``)."""

    requests: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    replies: int = 0
    malformed: int = 0  # datagrams that were no reply to anything pending
    latency_sum: float = 0.0  # seconds from first send to reply, summed


@dataclass(slots=True)
class NgClient:
    """Requests in flight to one rtpengine instance (see the module doc)."""

    new_cookie: Callable[[], str]
    interval: float = 0.5
    attempts: int = 4
    stats: NgStats = field(default_factory=NgStats)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _heap: list[tuple[float, str]] = field(default_factory=list)

    def request(self, message: Message, now: float) -> tuple[str, Send]:
        """Frame ``message`` (it must hold ``command``) under a fresh cookie."""
        if not isinstance(message.get("command"), str):
            raise ValueError("an ng request needs a command")
        cookie = self.new_cookie()
        while cookie in self._pending:
            cookie = self.new_cookie()
        data = frame(cookie, message)
        if len(data) > MAX_DATAGRAM:
            raise ValueError("ng request does not fit in a datagram")
        deadline = now + self.interval
        self._pending[cookie] = _Pending(data, 1, deadline)
        self._started[cookie] = now
        heapq.heappush(self._heap, (deadline, cookie))
        self.stats.requests += 1
        return cookie, Send(data)

    def cancel(self, cookie: str) -> None:
        """Forget a request nobody waits for any more."""
        self._pending.pop(cookie, None)
        self._started.pop(cookie, None)

    def on_datagram(self, data: bytes, now: float) -> Completed | None:
        """The reply ``data`` completes, if any (a late or stray datagram: None)."""
        try:
            cookie, reply = parse(data)
        except BencodeError:
            self.stats.malformed += 1
            return None
        if self._pending.pop(cookie, None) is None:
            self.stats.malformed += 1
            return None
        self.stats.replies += 1
        self.stats.latency_sum += now - self._started.pop(cookie, now)
        return Completed(cookie, reply)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and (
            heap[0][1] not in self._pending or self._pending[heap[0][1]].deadline != heap[0][0]
        ):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def on_timer(self, now: float) -> list[Output]:
        """Resend what is due; give up on what has had every attempt."""
        outputs: list[Output] = []
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, cookie = heapq.heappop(self._heap)
            pending = self._pending[cookie]
            if pending.sent >= self.attempts:
                del self._pending[cookie]
                self._started.pop(cookie, None)
                self.stats.timeouts += 1
                outputs.append(TimedOut(cookie))
                continue
            pending.sent += 1
            pending.deadline = now + self.interval
            heapq.heappush(self._heap, (pending.deadline, cookie))
            self.stats.retransmissions += 1
            outputs.append(Send(pending.data))
        return outputs

    def fail_all(self) -> list[TimedOut]:
        """The instance is unreachable (an ICMP error): every pending request fails."""
        failed = [TimedOut(cookie) for cookie in self._pending]
        self.stats.timeouts += len(failed)
        self._pending.clear()
        self._started.clear()
        self._heap.clear()
        return failed
