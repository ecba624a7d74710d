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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

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

    @property
    def status(self) -> str: ...

    async def connect(self) -> bool: ...

    def cancel(self) -> None: ...


class Placing:
    """Placing a call once: every ``connect()`` waits for the same attempt
    (``_connect``), which a waiter giving up does not cancel."""

    _outcome: asyncio.Future[bool] | None = None

    async def connect(self) -> bool:
        """Place the call and wait: True once answered, False when it failed."""
        if self._outcome is None:
            self._outcome = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._outcome)

    async def _connect(self) -> bool:  # pragma: no cover - each kind has its own
        raise NotImplementedError
