"""The pool of UDP ports RTP sessions bind (RTP even, RTCP the odd one above)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from media.quality import RtpTotals

if TYPE_CHECKING:
    from media.session import RtpSession

__all__ = ["PortPool", "PortsExhausted"]


class PortsExhausted(RuntimeError):
    """Every port of the range is in use."""


class PortPool:
    """Hands out even ports from ``[start, end]``, least recently used first.

    Reusing the port freed longest ago keeps late packets of an ended call
    from landing in a new one (the same reason Asterisk and FreeSWITCH rotate).
    """

    def __init__(self, start: int, end: int) -> None:
        if not 0 < start <= end < 65536:
            raise ValueError(f"bad port range {start}-{end}")
        first = start + (start & 1)
        self._free: deque[int] = deque(range(first, end, 2))  # end is for RTCP at most
        if not self._free:
            raise ValueError(f"port range {start}-{end} holds no RTP/RTCP pair")
        self._used: set[int] = set()
        self.size = len(self._free)
        # For metrics: the sessions holding ports now, and what those that ended counted.
        self.sessions: set[RtpSession] = set()
        self.ended: dict[str, RtpTotals] = {}

    def acquire(self) -> int:
        if not self._free:
            raise PortsExhausted(f"all {self.size} RTP ports are in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)

    @property
    def in_use(self) -> int:
        return len(self._used)
