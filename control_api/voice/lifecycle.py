"""A call's record and status callbacks, kept in step with the call.

Every call (inbound, placed by REST, or dialled by ``<Dial>``) has a row in
the store and, when the application asked for them, status callbacks
(reference §3). :class:`CallLifecycle` writes both in order, off the media
path: each write waits for the one before, and a failed write never stops
the ones after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from control_api.status_callbacks import callback_params
from control_api.store import CallRecord
from control_api.store.rows import parties
from control_api.webhooks import Outbox

__all__ = ["API_VERSION", "CallLifecycle", "Journal", "journals_settled", "now"]

log = logging.getLogger("callswitch.voice")

API_VERSION = "2010-04-01"
# Where the caller and the called are (FromCity ... ToCountry): we never know, so empty.
UNKNOWN_PLACES = tuple(
    (f"{party}{place}", "")
    for party in ("From", "To")
    for place in ("City", "State", "Zip", "Country")
)
# StatusCallbackEvent names → the CallStatus they report (reference §2, §3).
EVENT_OF_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
}


def now() -> datetime:
    return datetime.now(UTC)


# Every journal's last queued write, until it ran: what a stopping node waits for
# before it closes the store (calls hung up at shutdown still record how they ended).
_unsettled: set[asyncio.Future[None]] = set()


async def journals_settled(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for every call's queued writes; False if some
    were still running then."""
    if not _unsettled:
        return True
    _, pending = await asyncio.wait(set(_unsettled), timeout=timeout)
    return not pending


class Journal:
    """One call's store writes and callbacks: in order, each after the one before."""

    def __init__(self) -> None:
        self._last: asyncio.Future | None = None

    def add(self, write: Callable[[], Awaitable[object]]) -> asyncio.Future:
        """Queue ``write`` after the ones before; the future is done once it ran."""
        previous = self._last

        async def step() -> None:
            if previous is not None:
                await previous
            try:
                await write()
            except Exception:  # a failed write must not stop the ones after it
                log.exception("voice.journal_write_failed")

        self._last = last = asyncio.ensure_future(step())
        if previous is not None:
            _unsettled.discard(previous)  # the new last write waits for it
        _unsettled.add(last)
        last.add_done_callback(_unsettled.discard)
        return last

    async def flush(self) -> None:
        if self._last is not None:
            await self._last


# Calls that reached a final status in this process, by (direction, status): for metrics.
FINISHED_CALLS: Counter[tuple[str, str]] = Counter()


class CallLifecycle:
    """The record of one call and the status callbacks its application asked for.

    ``events`` is the StatusCallbackEvent set (initiated, ringing, answered,
    completed); None means every event, as a number's StatusCallback gets.
    """

    def __init__(
        self,
        store,
        outbox: Outbox,
        record: CallRecord,
        base: list[tuple[str, str]],
        *,
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        events: frozenset[str] | None = None,
        insert: bool = True,
        billing=None,
    ) -> None:
        self.store = store
        self.billing = billing  # control_api.usage.billing.Billing: prices the call at its end
        self.outbox = outbox
        self.record = record
        self.base = base
        self.status = record.status
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method or "POST"
        self.events = events
        self.sequence = 0
        self.journal = Journal()
        if self._wanted("completed"):  # for the node that ends the call if this one is lost
            record.final_callback = status_callback
            record.final_callback_method = self.status_callback_method
            record.callback_params = [[name, value] for name, value in base]
        self._inserted = self.journal.add(lambda: store.insert_call(record)) if insert else None

    @property
    def sid(self) -> str:
        return self.record.sid

    async def recorded(self) -> None:
        """Wait until the call's record is in the store: as on Twilio, an application
        hearing of the call by webhook finds it at once in the Calls API."""
        if self._inserted is not None and not self._inserted.done():
            await asyncio.shield(self._inserted)

    def params(self) -> list[tuple[str, str]]:
        """The webhook parameters of the call as of now."""
        return [*self.base, ("CallStatus", self.status)]

    def _wanted(self, status: str) -> bool:
        if not self.status_callback:
            return False
        if self.events is None:
            return True
        return EVENT_OF_STATUS.get(status, "completed") in self.events

    def callback(self, status: str, **extra: str) -> None:
        """Queue a status callback reporting ``status`` (when its event was asked for)."""
        if not self._wanted(status):
            return
        url = self.status_callback
        assert url is not None  # _wanted: only a call with a status callback wants one
        fields = callback_params(self.base, status, self.sequence, **extra)
        self.sequence += 1
        record = self.record
        self.journal.add(
            lambda: self.outbox.enqueue(
                account_sid=record.account_sid,
                url=url,
                method=self.status_callback_method,
                params=fields,
                call_sid=record.sid,
            )
        )

    def update(self, status: str | None = None, **fields) -> None:
        """Write a change of the record (and remember the status for webhooks)."""
        if status is not None:
            self.status = status
            fields["status"] = status
        fields.setdefault("date_updated", now())
        sid = self.record.sid
        self.journal.add(lambda: self.store.update_call(sid, **fields))

    def initiated(self) -> None:
        self.callback("initiated")

    def ringing(self) -> None:
        self.update("ringing")
        self.callback("ringing")

    def answered(self) -> None:
        self.update("in-progress", start_time=now())
        self.callback("in-progress")

    def machine_detected(self, answered_by: str, duration_ms: int) -> None:
        """Who answered (answering-machine detection): on the record, and on every
        webhook and callback of the call from now on, as Twilio sends them."""
        self.base = [
            *self.base,
            ("AnsweredBy", answered_by),
            ("MachineDetectionDuration", str(duration_ms)),
        ]
        self.update(answered_by=answered_by)

    def finished(self, status: str, duration: float, **extra: str) -> None:
        end = now()
        FINISHED_CALLS[self.record.direction, status] += 1
        seconds = str(round(duration))
        self.update(status, end_time=end, duration=int(seconds))
        self.callback(status, CallDuration=seconds, Duration=seconds, **extra)
        if self.billing is not None:
            record, billing = self.record, self.billing
            self.journal.add(
                lambda: billing.call_finished(
                    **parties(record), status=status, duration_s=int(seconds)
                )
            )

    async def flush(self) -> None:
        await self.journal.flush()


def new_record(
    *,
    sid: str,
    account_sid: str,
    to: str,
    from_: str,
    direction: str,
    status: str,
    parent_call_sid: str | None = None,
    phone_number_sid: str | None = None,
    sip_call_id: str | None = None,
    forwarded_from: str | None = None,
    caller_name: str | None = None,
) -> CallRecord:
    stamp = now()
    return CallRecord(
        sid=sid,
        account_sid=account_sid,
        parent_call_sid=parent_call_sid,
        to=to,
        from_=from_,
        phone_number_sid=phone_number_sid,
        status=status,
        direction=direction,
        start_time=stamp,
        end_time=None,
        duration=None,
        price=None,
        price_unit="USD",
        answered_by=None,
        forwarded_from=forwarded_from or None,
        caller_name=caller_name or None,
        sip_call_id=sip_call_id,
        date_created=stamp,
        date_updated=stamp,
    )


def base_params(
    *,
    call_sid: str,
    account_sid: str,
    from_: str,
    to: str,
    direction: str,
    parent_call_sid: str = "",
    forwarded_from: str = "",
    caller_name: str = "",
) -> list[tuple[str, str]]:
    """The parameters every voice webhook of a call carries (reference §3);
    ``forwarded_from`` and ``caller_name`` as a carrier told them (caller_identity.py)."""
    return [
        ("CallSid", call_sid),
        ("AccountSid", account_sid),
        ("From", from_),
        ("To", to),
        ("ApiVersion", API_VERSION),
        ("Direction", direction),
        ("ForwardedFrom", forwarded_from),
        ("CallerName", caller_name),
        ("ParentCallSid", parent_call_sid),
        ("Called", to),
        ("Caller", from_),
        *UNKNOWN_PLACES,
    ]
