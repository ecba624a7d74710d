"""Carriers: where outbound messages leave callswitch and inbound ones come from.

A carrier is anything with a ``name``, ``serves(number)`` (the length of the longest
prefix it serves, -1 for none, as trunks do) and ``submit(sms)`` answering the
carrier's id for the message. What a carrier hears back (delivery receipts, inbound
messages) it reports through the ``CarrierEvents`` it is given, never by importing the
message service. Built in: SMPP 3.4 (``smpp_carrier.py``), SIP MESSAGE through a trunk
(``sip_carrier.py``) and ``LocalCarrier``, which hands a message to one of our own
numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Protocol

from control_api.sms.mms import MmsPart

__all__ = [
    "Carrier",
    "CarrierEvents",
    "CarrierRejected",
    "CarrierUnavailable",
    "LocalCarrier",
    "OutboundSms",
    "select_carrier",
]


@dataclass(frozen=True, slots=True)
class OutboundSms:
    sid: str
    to: str
    from_: str
    body: str
    media_urls: tuple[str, ...] = ()
    validity_period: int | None = None  # seconds
    # The media themselves, for a carrier that carries them (``carries_media``).
    media: tuple[MmsPart, ...] = ()


class CarrierUnavailable(Exception):
    """The carrier cannot take messages now (not bound, window full, link down): the
    message stays queued and is tried again later."""


class CarrierRejected(Exception):
    """The carrier refused this message for good: it fails with ``error_code``."""

    def __init__(self, message: str, error_code: int = 30008) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(slots=True)
class CarrierEvents:
    """What a carrier reports upwards."""

    # (carrier name, carrier message id, delivered?, error code or None); a coroutine
    # because carriers run it as a task of its own
    receipt: Callable[[str, str, bool, int | None], Coroutine[object, object, None]]
    # (from, to, body[, media: a sequence of MmsPart]) of a message for one of our numbers
    inbound: Callable[..., Awaitable[bool]]
    # (carrier name): the carrier can take messages again (bound, link up)
    available: Callable[[str], Awaitable[None]] | None = None


class Carrier(Protocol):
    """A carrier; one with ``carries_media = True`` gets an MMS's media in
    ``OutboundSms.media``, any other the text with the media's URLs."""

    name: str

    def serves(self, number: str) -> int: ...

    async def submit(self, sms: OutboundSms) -> str: ...


def select_carrier(carriers: Sequence[Carrier], number: str) -> Carrier | None:
    """The carrier with the longest prefix serving ``number`` (the first on a tie)."""
    best: Carrier | None = None
    best_length = -1
    for carrier in carriers:
        length = carrier.serves(number)
        if length > best_length:
            best, best_length = carrier, length
    return best


class LocalCarrier:
    """Messages between numbers of this callswitch: delivered at once as inbound."""

    name = "local"
    carries_media = True

    def __init__(
        self,
        is_ours: Callable[[str], Awaitable[bool]],
        events: CarrierEvents,
    ) -> None:
        self.is_ours = is_ours
        self.events = events
        self._ours: set[str] = set()
        self._tasks: set[asyncio.Task] = set()

    def serves(self, number: str) -> int:
        # Routing is synchronous; numbers are learnt as they are checked (``claims``).
        return 100 if number in self._ours else -1

    async def claims(self, number: str) -> bool:
        if await self.is_ours(number):
            self._ours.add(number)
            return True
        self._ours.discard(number)
        return False

    async def submit(self, sms: OutboundSms) -> str:
        if not await self.events.inbound(sms.from_, sms.to, sms.body, sms.media):
            raise CarrierRejected(f"{sms.to} is not a number here", 30005)
        # Stored as the number's inbound message: delivered, as far as anyone can know.
        task = asyncio.get_running_loop().create_task(
            self.events.receipt(self.name, sms.sid, True, None)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return sms.sid
