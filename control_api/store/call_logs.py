"""Call logs: the notifications (NO…) a call left, errors and warnings as Twilio's
debugger shows them, and the events of a call, each webhook request it made with its
answer (``Calls/{CA}/Events``).

The voice runtime writes them off the call's path, in batches
(``control_api.call_log.CallLog``); the REST API reads them. A call keeps at most
``per_call`` rows of each: what comes past that is dropped at the insert, so an
application's server answering errors in a loop cannot fill the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Connection, Row

from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, as_row, stamp
from control_api.store.schema import call_events, notifications

__all__ = ["CallEvent", "CallEventStore", "NotificationRecord", "NotificationStore"]

ERROR = 0
WARNING = 1


@dataclass
class NotificationRecord:
    """An error (``log`` 0) or a warning (1) a call met, with the request that met it."""

    sid: str
    account_sid: str
    call_sid: str | None
    log: int
    error_code: str | None
    message_text: str
    message_date: datetime
    request_url: str | None = None
    request_method: str | None = None
    request_variables: str | None = None
    response_headers: str | None = None
    response_body: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None


@dataclass
class CallEvent:
    """A request a call made to its application and what came back (``response_code``
    None: no answer, ``error`` says why)."""

    call_sid: str
    account_sid: str
    request_method: str
    request_url: str
    request_parameters: list[list[str]]
    response_code: int | None
    request_duration: int  # milliseconds
    content_type: str | None
    response_body: str | None
    error: str | None
    date_created: datetime
    id: int | None = None  # set by the database


def _notification(row: Row[Any]) -> NotificationRecord:
    return NotificationRecord(**row._mapping)


def _event(row: Row[Any]) -> CallEvent:
    return CallEvent(**row._mapping)


def _capped_insert(c: Connection, table: Table, rows: list[dict[str, Any]], per_call: int) -> int:
    """Insert the rows whose call has fewer than ``per_call`` rows in ``table`` (counting
    those inserted before them); how many went in."""
    room: dict[str, int] = {}
    kept = []
    for row in rows:
        call_sid = row["call_sid"]
        if call_sid is not None:
            if call_sid not in room:
                count = select(func.count()).select_from(table)
                have = c.execute(count.where(table.c.call_sid == call_sid)).scalar_one()
                room[call_sid] = per_call - have
            if room[call_sid] <= 0:
                continue
            room[call_sid] -= 1
        kept.append(row)
    if kept:
        c.execute(insert(table), kept)
    return len(kept)


_N = notifications.c
# Newest first, as Twilio lists them; ``call_sid``, ``log`` and ``message_date_after``/
# ``message_date_before``.
_NOTIFICATIONS = Listing(
    order_by=(_N.message_date.desc(), _N.sid.desc()),
    equal={"call_sid": _N.call_sid, "log": _N.log},
    ranges={"message_date": _N.message_date},
)


class NotificationStore(Owned[NotificationRecord]):
    """The accounts' notifications."""

    listing = _NOTIFICATIONS

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, notifications, _notification)

    async def add(self, records: Sequence[NotificationRecord], *, per_call: int) -> int:
        """Insert ``records``, but none past a call's ``per_call``-th; how many went in."""
        for record in records:
            stamp(record)
        rows = [as_row(record) for record in records]
        kept: int = await self.rows.run(lambda c: _capped_insert(c, notifications, rows, per_call))
        return kept


class CallEventStore:
    """The calls' events, oldest first."""

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, call_events, _event)

    async def add(self, events: Sequence[CallEvent], *, per_call: int) -> int:
        """Insert ``events``, but none past a call's ``per_call``-th; how many went in."""
        rows = [{k: v for k, v in as_row(event).items() if k != "id"} for event in events]
        kept: int = await self.rows.run(lambda c: _capped_insert(c, call_events, rows, per_call))
        return kept

    async def page(
        self, account_sid: str, call_sid: str, *, offset: int = 0, limit: int = 50
    ) -> list[CallEvent]:
        t = call_events.c
        where = (t.account_sid == account_sid, t.call_sid == call_sid)
        return await self.rows.page(where, (t.date_created, t.id), offset, limit)

    async def count(self, call_sid: str) -> int:
        return await self.rows.count(call_events.c.call_sid == call_sid)
