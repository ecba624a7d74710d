"""Call queues (QU…) and their members, the calls waiting in them now.

A queue is made by ``POST Queues.json`` or by the first ``<Enqueue>`` of its name;
its name is unique in its account. A member row exists while its call waits: the
voice runtime writes it when the call joins and deletes it when the call leaves
(control_api/voice/queue.py), so the REST API sees every node's callers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.nodes import LIVE_STATUSES
from control_api.store.rows import Listing, Owned, Rows, as_row, created, reader
from control_api.store.schema import calls, queue_members, queues

__all__ = ["QueueMember", "QueueMemberStore", "QueueNameTaken", "QueueRecord", "QueueStore"]


class QueueNameTaken(Exception):
    """The account has a queue of that friendly name already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a queue named {name!r} exists already")
        self.name = name


@dataclass
class QueueRecord:
    sid: str
    account_sid: str
    friendly_name: str
    max_size: int
    date_created: datetime
    date_updated: datetime


@dataclass
class QueueMember:
    """A call waiting in a queue, since ``date_enqueued``."""

    queue_sid: str
    call_sid: str
    account_sid: str
    date_enqueued: datetime


_queue = reader(QueueRecord)
_member = reader(QueueMember)


_QUEUES = Listing(order_by=(queues.c.date_created, queues.c.sid))
_LINE = (queue_members.c.date_enqueued, queue_members.c.call_sid)  # front first
# A row whose call has ended is no member: its node stopped before removing it (the
# call was then marked failed, control_api/cluster/node.py). A call not yet recorded
# (its record is written off the call's path) is still one.
_WAITING = ~exists().where(
    calls.c.sid == queue_members.c.call_sid, calls.c.status.not_in(LIVE_STATUSES)
)


class QueueStore(Owned[QueueRecord]):
    """The accounts' queues, oldest first."""

    listing = _QUEUES

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, queues, _queue)

    async def create(self, account_sid: str, friendly_name: str, max_size: int) -> QueueRecord:
        """A new queue; ``QueueNameTaken`` when the account has one of that name."""
        record = created(
            QueueRecord,
            "QU",
            account_sid=account_sid,
            friendly_name=friendly_name,
            max_size=max_size,
        )
        try:
            return await self.rows.insert(record)
        except IntegrityError:
            raise QueueNameTaken(friendly_name) from None

    async def named(self, account_sid: str, friendly_name: str) -> QueueRecord | None:
        t = queues.c
        return await self.rows.one(t.account_sid == account_sid, t.friendly_name == friendly_name)

    async def named_or_created(
        self, account_sid: str, friendly_name: str, max_size: int
    ) -> QueueRecord:
        """The account's queue of that name, made now (of ``max_size``) if there is none
        (``<Enqueue>``)."""
        found = await self.named(account_sid, friendly_name)
        if found is not None:
            return found
        try:
            return await self.create(account_sid, friendly_name, max_size)
        except QueueNameTaken:  # made meanwhile by another caller
            found = await self.named(account_sid, friendly_name)
            assert found is not None  # queues are deleted only when empty
            return found

    async def update(
        self,
        account_sid: str,
        sid: str,
        *,
        friendly_name: str | None = None,
        max_size: int | None = None,
    ) -> QueueRecord | None:
        """Rename or resize; None when there is no such queue, ``QueueNameTaken`` when
        the new name is another queue's."""
        values: dict[str, Any] = {"date_updated": utcnow()}
        if friendly_name is not None:
            values["friendly_name"] = friendly_name
        if max_size is not None:
            values["max_size"] = max_size
        try:
            return await self.rows.update_one(self.owned(account_sid, sid), values)
        except IntegrityError:
            raise QueueNameTaken(friendly_name or "") from None


class QueueMemberStore:
    """The calls waiting in queues, front first; rows of calls that have ended are
    left out of every read."""

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, queue_members, _member)

    async def add(self, member: QueueMember) -> QueueMember:
        statement = insert(queue_members).values(**as_row(member))
        await self.rows.run(lambda c: c.execute(statement))
        return member

    async def remove(self, queue_sid: str, call_sid: str) -> bool:
        t = queue_members.c
        return await self.rows.delete(t.queue_sid == queue_sid, t.call_sid == call_sid) > 0

    async def get(self, account_sid: str, queue_sid: str, call_sid: str) -> QueueMember | None:
        t = queue_members.c
        return await self.rows.one(
            t.account_sid == account_sid, t.queue_sid == queue_sid, t.call_sid == call_sid, _WAITING
        )

    async def front(self, account_sid: str, queue_sid: str) -> QueueMember | None:
        t = queue_members.c
        query = (
            select(queue_members)
            .where(t.account_sid == account_sid, t.queue_sid == queue_sid, _WAITING)
            .order_by(*_LINE)
            .limit(1)
        )
        return await self.rows.first(query)

    async def page(
        self, account_sid: str, queue_sid: str, *, offset: int = 0, limit: int = 50
    ) -> list[QueueMember]:
        """The queue's members front first; a member's position is its index + 1."""
        t = queue_members.c
        where = (t.account_sid == account_sid, t.queue_sid == queue_sid, _WAITING)
        return await self.rows.page(where, _LINE, offset, limit)

    async def position(self, member: QueueMember) -> int:
        """1 for the front: how many joined before it (or at once with a smaller SID)."""
        t = queue_members.c
        ahead = (t.date_enqueued < member.date_enqueued) | (
            (t.date_enqueued == member.date_enqueued) & (t.call_sid < member.call_sid)
        )
        return await self.rows.count(t.queue_sid == member.queue_sid, ahead, _WAITING) + 1

    async def enqueued(self, queue_sids: Iterable[str]) -> dict[str, list[datetime]]:
        """When each member of these queues joined, by queue (the queues' statistics)."""
        sids = list(queue_sids)
        t = queue_members.c
        query = select(t.queue_sid, t.date_enqueued).where(t.queue_sid.in_(sids), _WAITING)
        rows = await self.rows.run(lambda c: c.execute(query).all())
        found: dict[str, list[datetime]] = defaultdict(list)
        for queue_sid, date_enqueued in rows:
            found[queue_sid].append(date_enqueued)
        return {sid: found.get(sid, []) for sid in sids}
