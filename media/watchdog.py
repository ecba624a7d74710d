"""Dead calls end: one loop timer that notices RTP sessions whose peer went quiet.

A peer that answered and then vanished (a crashed phone, a NAT that forgot the
binding, a forged INVITE's victim that never sent a packet) would otherwise hold
its RTP ports until the call's own end, which may never come. Every
:meth:`SilenceWatchdog.check_period` seconds the watchdog compares each watched
session's :meth:`~media.session.RtpSession.activity` (counters the receive path
keeps anyway) with the last look; a session silent for ``timeout`` seconds, or
``hold_timeout`` while it is on hold (the peer said sendonly or inactive, so it
need not send), is reported once through its ``on_silent`` callback, which hangs
the call up. Nothing is done per packet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from media.session import RtpSession

__all__ = ["SilenceWatchdog"]

MAX_CHECK_PERIOD_S = 5.0
MIN_CHECK_PERIOD_S = 0.25

OnSilent = Callable[[float, bool], None]  # on_silent(seconds silent, held)


class _Watched:
    __slots__ = ("activity", "on_silent", "session", "since")

    def __init__(self, session: RtpSession, on_silent: OnSilent, now: float) -> None:
        self.session = session
        self.on_silent = on_silent
        self.activity = session.activity()
        self.since = now


class SilenceWatchdog:
    """Reports sessions that received no RTP or RTCP for ``timeout`` seconds
    (``hold_timeout`` while on hold); 0 turns either off."""

    def __init__(
        self,
        timeout: float,
        hold_timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = max(0.0, timeout)
        self.hold_timeout = max(0.0, hold_timeout)
        self._clock = clock
        self._watched: dict[int, _Watched] = {}
        self._handle: asyncio.TimerHandle | None = None
        self.timeouts = 0  # sessions reported silent (for /metrics)

    @property
    def enabled(self) -> bool:
        return bool(self.timeout or self.hold_timeout)

    @property
    def check_period(self) -> float:
        """A quarter of the shortest timeout, between 0.25 and 5 s: a silent call ends
        within that much after its timeout."""
        limits = [t for t in (self.timeout, self.hold_timeout) if t]
        period = min(limits) / 4 if limits else MAX_CHECK_PERIOD_S
        return min(MAX_CHECK_PERIOD_S, max(MIN_CHECK_PERIOD_S, period))

    def watch(self, session: RtpSession, on_silent: OnSilent) -> None:
        """Watch ``session`` until it closes (or :meth:`forget`)."""
        if not self.enabled:
            return
        self._watched[id(session)] = _Watched(session, on_silent, self._clock())
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.check_period, self._tick)

    def forget(self, session: RtpSession) -> None:
        self._watched.pop(id(session), None)

    def __len__(self) -> int:
        return len(self._watched)

    def check(self) -> None:
        """Look at every watched session once (the timer's work; tests call it directly)."""
        now = self._clock()
        silent = []
        for key, watched in list(self._watched.items()):
            session = watched.session
            if session.closed:
                del self._watched[key]
                continue
            activity = session.activity()
            if activity != watched.activity:
                watched.activity = activity
                watched.since = now
                continue
            held = bool(session.hold)
            limit = self.hold_timeout if held else self.timeout
            if limit and now - watched.since >= limit:
                del self._watched[key]
                silent.append((watched, now - watched.since, held))
        for watched, seconds, held in silent:
            self.timeouts += 1
            watched.on_silent(seconds, held)

    def _tick(self) -> None:
        self._handle = None
        self.check()
        if self._watched:
            self._handle = asyncio.get_running_loop().call_later(self.check_period, self._tick)

    def close(self) -> None:
        self._watched.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
