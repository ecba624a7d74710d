"""The store's messages: the Messages resource and the durable send queue behind it.

An outbound message is written ``queued`` with ``next_attempt_at``; the sender takes
due rows, hands each to a carrier and writes what the carrier said. A message is
never lost: until a carrier has accepted it, it stays ``queued`` in the store and a
restart picks it up again (``requeue_unaccepted``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection, Row

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.group import group_commit
from control_api.store.rows import Listing, Owned, Rows, attributes_of, columns_of, stamp
from control_api.store.schema import message_media, messages, outbox_row, webhook_outbox

__all__ = ["MessageRecord", "MessageStore"]


@dataclass
class MessageRecord:
    """What the REST API shows of a message (reference §7), plus its place in the queue."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str = ""
    status: str = "queued"
    direction: str = "outbound-api"
    num_segments: int = 1
    encoding: str = "GSM-7"
    media_urls: list[str] = field(default_factory=list)
    messaging_service_sid: str | None = None
    price: str | None = None
    price_unit: str = "USD"
    error_code: int | None = None
    error_message: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    validity_period: int | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    carrier: str | None = None
    carrier_message_id: str | None = None
    sending_by: str | None = None  # the node (claimant) that took it 'sending'
    sending_until: datetime | None = None  # and until when
    date_sent: datetime | None = None
    date_created: datetime | None = None
    date_updated: datetime | None = None


_FIELDS = frozenset(f.name for f in fields(MessageRecord))
_UPDATABLE = _FIELDS - {"sid", "account_sid", "date_created"}


def _record(row: Row[Any]) -> MessageRecord:
    values = attributes_of(row)
    values["media_urls"] = list(values["media_urls"] or [])
    return MessageRecord(**values)


_LISTING = Listing(
    order_by=(messages.c.date_created.desc(), messages.c.sid.desc()),
    equal={"to": messages.c.to_address, "from_": messages.c.from_address},
    ranges={"sent": messages.c.date_sent},
)
_BY_SID = select(messages).where(messages.c.sid == bindparam("match_sid"))
_BY_CARRIER_ID = select(messages).where(
    messages.c.carrier == bindparam("match_carrier"),
    messages.c.carrier_message_id == bindparam("match_id"),
)
# (columns set, statuses required) -> its UPDATE, built once: a message's life is a
# handful of updates, and building one costs more than running it.
_UPDATES: dict[tuple[tuple[str, ...], tuple[str, ...] | None], Any] = {}


def _update(sid: str, statuses: tuple[str, ...] | None, values: dict[str, Any]):
    row = columns_of(values)
    names = tuple(sorted(row))
    key = (names, statuses)
    statement = _UPDATES.get(key)
    if statement is None:
        conditions = [messages.c.sid == bindparam("match_sid")]
        if statuses is not None:
            conditions.append(messages.c.status.in_(statuses))
        statement = (
            update(messages)
            .where(*conditions)
            .values({name: bindparam(f"set_{name}") for name in names})
        )
        if len(_UPDATES) < 1000:
            _UPDATES[key] = statement
    params = {f"set_{name}": value for name, value in row.items()}
    params["match_sid"] = sid
    return statement, params


class MessageStore(Owned[MessageRecord]):
    """Messages on the store's database; each method is one transaction. ``page``
    filters: to, from_, sent_after (inclusive), sent_before (exclusive), both on
    ``date_sent``; newest first."""

    listing = _LISTING

    def __init__(self, db: Database) -> None:
        self.db = db
        self.group = group_commit(db)
        self.run = self.group.run  # small writes from many messages commit together
        self.rows = Rows(db, messages, _record, run=self.run)

    async def delete(self, account_sid: str, sid: str) -> bool:
        """Delete the account's message ``sid`` and its media (MMS) with it."""
        media = message_media.delete().where(
            message_media.c.account_sid == account_sid, message_media.c.message_sid == sid
        )
        message = messages.delete().where(*self.owned(account_sid, sid))

        def work(c: Connection) -> int:
            c.execute(media)
            deleted: int = c.execute(message).rowcount
            return deleted

        return await self.rows.run(work) > 0

    async def insert(self, record: MessageRecord) -> MessageRecord:
        stamp(record)
        await self.group.insert(messages, columns_of(vars(record)))
        return record

    async def update(self, sid: str, **values: Any) -> MessageRecord | None:
        """Change attributes of a message; the message after, or None if there is none."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise TypeError(f"update() cannot change {sorted(unknown)}")
        values.setdefault("date_updated", utcnow())
        statement, params = _update(sid, None, values)

        def work(c: Connection) -> Any:
            c.execute(statement, params)
            return c.execute(_BY_SID, {"match_sid": sid}).first()

        row = await self.run(work)
        return _record(row) if row else None

    async def update_if(self, sid: str, statuses: tuple[str, ...], **values: Any) -> bool:
        """Change a message only while its status is one of ``statuses`` (no step back
        from ``delivered`` to ``sent`` when a carrier's answers cross)."""
        values.setdefault("date_updated", utcnow())
        statement, params = _update(sid, statuses, values)
        result = await self.run(lambda c: c.execute(statement, params))
        return result.rowcount > 0

    async def get_any(self, sid: str) -> MessageRecord | None:
        return await self.rows.one(messages.c.sid == sid)

    async def due(self, now: datetime, limit: int = 100) -> list[MessageRecord]:
        """Queued outbound messages whose next attempt is due, oldest first."""
        query = (
            select(messages)
            .where(messages.c.status == "queued", messages.c.next_attempt_at <= now)
            .order_by(messages.c.next_attempt_at, messages.c.sid)
            .limit(limit)
        )
        return await self.rows.all(query)

    async def take_due(
        self, now: datetime, limit: int = 100, *, claimant: str = "", lease_s: float = 120.0
    ) -> list[MessageRecord]:
        """Queued outbound messages whose next attempt is due, oldest first, marked
        ``sending`` by ``claimant`` until ``lease_s`` from ``now`` in the same
        transaction: taken by this sender, and by no other (of this process or another
        node of the store) until put back with ``update(status="queued")`` or
        ``requeue_unaccepted``.

        The UPDATE repeats ``status = 'queued'``, so a message another sender took
        between the select and the update is not taken twice; on PostgreSQL the rows
        are selected ``FOR UPDATE SKIP LOCKED``, so two nodes take different ones.
        """
        c_ = messages.c
        due = (
            select(c_.sid)
            .where(c_.status == "queued", c_.next_attempt_at <= now)
            .order_by(c_.next_attempt_at, c_.sid)
            .limit(limit)
        )
        claim = {
            "status": "sending",
            "date_updated": now,
            "sending_by": claimant,
            "sending_until": now + timedelta(seconds=lease_s),
        }

        def work(c: Connection) -> list[Any]:
            query = due.with_for_update(skip_locked=True) if c.dialect.name == "postgresql" else due
            sids = list(c.execute(query).scalars())
            if not sids:
                return []
            return list(
                c.execute(
                    update(messages)
                    .where(c_.sid.in_(sids), c_.status == "queued")
                    .values(**claim)
                    .returning(*messages.c)
                ).all()
            )

        rows = await self.run(work)
        taken = sorted((_record(row) for row in rows), key=lambda m: (m.next_attempt_at, m.sid))
        return taken

    async def due_now(self, now: datetime) -> int:
        """Every queued message becomes due at ``now`` (a carrier came back)."""
        statement = (
            update(messages)
            .where(messages.c.status == "queued", messages.c.next_attempt_at > now)
            .values(next_attempt_at=now)
        )
        result = await self.run(lambda c: c.execute(statement))
        return result.rowcount

    async def next_due_at(self) -> datetime | None:
        query = select(func.min(messages.c.next_attempt_at)).where(messages.c.status == "queued")
        return await self.run(lambda c: c.execute(query).scalar_one_or_none())

    async def requeue_unaccepted(self, now: datetime, claimant: str | None = None) -> int:
        """Messages left ``sending`` before any carrier accepted them go back to the
        queue (they may reach the carrier twice: at least once, never lost): those
        ``claimant`` took (a stop of this node), and any whose lease ran out (a node
        that died). With no ``claimant``, every one of them (a single node starting).
        """
        c_ = messages.c
        mine_or_lapsed = or_(c_.sending_until.is_(None), c_.sending_until < now)
        if claimant is not None:
            mine_or_lapsed = or_(c_.sending_by == claimant, mine_or_lapsed)
        statement = (
            update(messages)
            .where(c_.status == "sending", c_.carrier_message_id.is_(None))
            .values(status="queued", next_attempt_at=now, date_updated=now)
        )
        if claimant is not None:
            statement = statement.where(mine_or_lapsed)
        result = await self.run(lambda c: c.execute(statement))
        return result.rowcount

    async def queue_webhook(
        self,
        *,
        now: datetime,
        call_sid: str | None = None,
        wake: Callable[[], None] | None = None,
        **request: Any,
    ) -> None:
        """A status callback into the webhook outbox, batched with other rows for it; a
        ``delivery_id`` queued already is left as it is (the same callback, once).
        ``request``: delivery_id, account_sid, url, method, params (``outbox_row``)."""
        row = outbox_row(now=now, call_sid=call_sid, **request)
        await self.group.insert(webhook_outbox, row, ignore_existing=True)
        if wake is not None:
            wake()

    async def find_by_carrier_id(self, carrier: str, message_id: str) -> MessageRecord | None:
        params = {"match_carrier": carrier, "match_id": message_id}
        row = await self.run(lambda c: c.execute(_BY_CARRIER_ID, params).first())
        return _record(row) if row else None
