"""The call-leg protocol: what the voice runtime asks of every kind of call.

:class:`~control_api.calls.call.Call` (an inbound SIP call),
:class:`~control_api.calls.outbound_call.OutboundCall` (one we place over SIP),
:class:`~control_api.calls.browser.ClientCall` (ringing a browser tab) and
:class:`~control_api.calls.browser.BrowserOriginatedCall` (a call a tab placed)
each implement :class:`CallLeg`; the two we place also implement
:class:`PlacedLeg`, the dialled leg ``<Dial>``, transfers and the REST API ring.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from control_api.calls.call import CallTimes, new_call_sid
from media.leg import Leg

if TYPE_CHECKING:
    from control_api.calls.call import MediaSettings

__all__ = ["CallLeg", "PlacedLeg", "Placing"]


class CallLeg(Protocol):
    """One party of a call: its media leg, its times, and how it ends."""

    sid: str
    ended: asyncio.Event
    answer_time: float | None
    end_time: float | None
    on_answered: list[Callable[[Any], None]]

    @property
    def call_id(self) -> str: ...

    @property
    def media(self) -> MediaSettings:
        """The media settings it binds its leg with (its clock ticks recordings)."""

    @property
    def leg(self) -> Leg | None:
        """Its media, once it flows (before the answer, early media at most)."""

    @property
    def answered(self) -> bool: ...

    @property
    def duration(self) -> float: ...

    async def answer(self) -> bool: ...

    def hangup(self) -> None: ...

    def log(self, event: str, **fields: Any) -> None: ...


class PlacedLeg(CallLeg, Protocol):
    """A call we place (a dialled leg: :class:`OutboundCall` or :class:`ClientCall`): it
    rings, connects (or not) and can be canceled while it rings."""

    canceled: bool
    on_ringing: list[Callable[[Any], None]]
    # Why it failed, for the call's notifications: (Twilio error code, text), or None.
    problem: tuple[int, str] | None

    @property
    def status(self) -> str: ...

    async def connect(self) -> bool: ...

    def cancel(self) -> None: ...


class Placing(CallTimes):
    """What every call we place shares: its state from the start, one attempt every
    ``connect()`` waits for (``_connect``, which a waiter giving up does not cancel),
    and its Calls status (the failure, when it never connected, is its kind's)."""

    _outcome: asyncio.Future[bool] | None = None
    problem: tuple[int, str] | None = None  # (code, text) for the call's notifications

    def _start(self, sid: str | None) -> None:
        """The state of a call about to be placed (with ``sid``, or a fresh one)."""
        self.sid = sid or new_call_sid()
        self.ended = asyncio.Event()
        self.ringing = asyncio.Event()
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.canceled = False
        self.on_answered: list[Callable[[Any], None]] = []
        self.on_ringing: list[Callable[[Any], None]] = []

    async def connect(self) -> bool:
        """Place the call and wait: True once answered, False when it failed."""
        if self._outcome is None:
            self._outcome = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._outcome)

    async def _connect(self) -> bool:  # pragma: no cover - each kind has its own
        raise NotImplementedError

    async def answer(self) -> bool:
        """For the TwiML runner: a call we placed is 'answered' once connected."""
        return self.answered and not self.ended.is_set()

    @property
    def status(self) -> str:
        """The Calls resource status of this call as of now."""
        if self.ended.is_set():
            if self.answered:
                return "completed"
            return "canceled" if self.canceled else self._failure()
        if self.answered:
            return "in-progress"
        return "ringing" if self.ringing.is_set() else "queued"

    def cancel(self) -> None:
        """Stop ringing. A call that answered goes on, and one that ended already (busy,
        no answer...) keeps its status: ``<Dial>`` cancels every party that lost."""
        if self.answered or self.ended.is_set():
            return
        self.canceled = True
        self._stop_ringing()

    def _failure(self) -> str:  # pragma: no cover - each kind has its own
        raise NotImplementedError

    def _stop_ringing(self) -> None:  # pragma: no cover - each kind has its own
        raise NotImplementedError
