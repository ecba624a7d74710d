"""Outgoing caller IDs (PN…): numbers an account proved it answers, by a validation
call, and may then show as the caller of the calls it places.

One caller ID of a number per account; the number is kept in E.164.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from control_api.sids import new_sid, utcnow
from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows
from control_api.store.schema import outgoing_caller_ids

__all__ = ["CallerId", "CallerIdStore"]


@dataclass
class CallerId:
    """A verified caller ID (Twilio's OutgoingCallerId)."""

    sid: str
    account_sid: str
    phone_number: str
    friendly_name: str | None
    date_created: datetime
    date_updated: datetime


def _caller_id(row: Row[Any]) -> CallerId:
    return CallerId(**row._mapping)


_c = outgoing_caller_ids.c


class CallerIdStore(Owned[CallerId]):
    """The accounts' verified caller IDs, oldest first; filters ``phone_number`` and
    ``friendly_name`` (equal)."""

    listing = Listing(
        order_by=(_c.date_created, _c.sid),
        equal={"phone_number": _c.phone_number, "friendly_name": _c.friendly_name},
    )

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, outgoing_caller_ids, _caller_id)

    async def verified(
        self, account_sid: str, phone_number: str, friendly_name: str | None = None
    ) -> CallerId:
        """The account's caller ID of ``phone_number`` (E.164), made now if it has none."""
        existing = await self.find(account_sid, phone_number)
        if existing is not None:
            return existing
        now = utcnow()
        record = CallerId(
            sid=new_sid("PN"),
            account_sid=account_sid,
            phone_number=phone_number,
            friendly_name=friendly_name or phone_number,
            date_created=now,
            date_updated=now,
        )
        try:
            return await self.rows.insert(record)
        except IntegrityError:  # verified twice at once: the other one stands
            found = await self.find(account_sid, phone_number)
            if found is None:
                raise
            return found

    async def find(self, account_sid: str, phone_number: str) -> CallerId | None:
        """The account's caller ID of ``phone_number`` (E.164), or None."""
        return await self.rows.one(_c.account_sid == account_sid, _c.phone_number == phone_number)

    async def rename(self, account_sid: str, sid: str, friendly_name: str) -> CallerId | None:
        values = {"friendly_name": friendly_name, "date_updated": utcnow()}
        return await self.rows.update_one(self.owned(account_sid, sid), values)
