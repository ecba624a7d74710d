"""Messages' media (ME…): the files of an MMS, kept with their content type.

An inbound message's media are stored as they arrived; an outbound message's as they
were fetched from its ``MediaUrl``. The bytes live in the database (a few MB at most
per message: the message service bounds their size and count), so every node that
shares the store serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Row

from control_api.store.engine import Database
from control_api.store.rows import Listing, Rows, created
from control_api.store.schema import message_media

__all__ = ["MediaRecord", "MessageMediaStore"]

_m = message_media.c
# Everything but the bytes: what lists and fetches of the resource show.
_DESCRIBED = [column for column in message_media.c if column.name != "content"]


@dataclass
class MediaRecord:
    """One medium of a message (Twilio's Media); ``content`` only when asked for."""

    sid: str
    account_sid: str
    message_sid: str
    content_type: str
    date_created: datetime
    date_updated: datetime
    content: bytes | None = None


def _record(row: Row[Any]) -> MediaRecord:
    return MediaRecord(**row._mapping)


class MessageMediaStore:
    """The media of the accounts' messages, oldest first."""

    listing = Listing(order_by=(_m.date_created, _m.sid), ranges={"date_created": _m.date_created})

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, message_media, _record)

    async def add(
        self, account_sid: str, message_sid: str, content_type: str, content: bytes
    ) -> MediaRecord:
        record = created(
            MediaRecord,
            "ME",
            account_sid=account_sid,
            message_sid=message_sid,
            content_type=content_type,
            content=content,
        )
        await self.rows.insert(record)
        return record

    async def page(
        self,
        account_sid: str,
        message_sid: str,
        *,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> list[MediaRecord]:
        """One page of a message's media (without their bytes)."""
        where = [_m.account_sid == account_sid, _m.message_sid == message_sid]
        where += self.listing.where(filters)
        query = (
            select(*_DESCRIBED)
            .where(*where)
            .order_by(*self.listing.order_by)
            .offset(offset)
            .limit(limit)
        )
        return await self.rows.all(query)

    async def of_message(self, account_sid: str, message_sid: str) -> list[MediaRecord]:
        """Every medium of a message (without their bytes), oldest first."""
        return await self.page(account_sid, message_sid, limit=1000)

    async def get(
        self, account_sid: str, message_sid: str, sid: str, *, content: bool = False
    ) -> MediaRecord | None:
        """One medium of the account's message, with its bytes if ``content``."""
        columns = message_media.c if content else _DESCRIBED
        where = (_m.account_sid == account_sid, _m.message_sid == message_sid, _m.sid == sid)
        return await self.rows.first(select(*columns).where(*where))

    async def contents(self, account_sid: str, message_sid: str) -> list[MediaRecord]:
        """Every medium of a message with its bytes, oldest first."""
        where = (_m.account_sid == account_sid, _m.message_sid == message_sid)
        query = select(message_media).where(*where).order_by(*self.listing.order_by)
        return await self.rows.all(query)

    async def delete(self, account_sid: str, message_sid: str, sid: str) -> bool:
        where = (_m.account_sid == account_sid, _m.message_sid == message_sid, _m.sid == sid)
        return await self.rows.delete(*where) > 0

    async def count(self, account_sid: str, message_sid: str) -> int:
        query = select(func.count()).where(
            _m.account_sid == account_sid, _m.message_sid == message_sid
        )
        count: int = await self.rows.run(lambda c: c.execute(query).scalar_one())
        return count
