"""The store's billing: priced usage, usage triggers and their firings, account balances.

Every call and message is priced once: ``record_usage`` inserts its usage item (unique
by the call or message SID) and takes the price off the account's balance in the same
transaction, so a retry or a restart neither loses nor doubles a charge. A trigger
fires once per period: ``fire_trigger`` inserts the (trigger, period) row and queues
the callback in the outbox in one transaction, and a second attempt finds the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.group import group_commit
from control_api.store.rows import Listing, Rows, reader, stamp, updatable
from control_api.store.schema import (
    account_balances,
    outbox_row,
    usage_items,
    usage_trigger_firings,
    usage_triggers,
    webhook_outbox,
)

__all__ = ["BillingStore", "UsageItem", "UsageSum", "UsageTriggerRecord", "insert_webhook"]


# Built once: every priced call and message runs them.
_INSERT_USAGE = insert(usage_items)
_BALANCE_FOR_UPDATE = (
    select(account_balances.c.balance)
    .where(account_balances.c.account_sid == bindparam("match_account"))
    .with_for_update()
)
_SET_BALANCE = (
    update(account_balances)
    .where(account_balances.c.account_sid == bindparam("match_account"))
    .values(balance=bindparam("new_balance"), date_updated=bindparam("new_date"))
)

_TRIGGERS = Listing(
    order_by=(usage_triggers.c.date_created.desc(), usage_triggers.c.sid.desc()),
    equal={name: usage_triggers.c[name] for name in ("recurring", "trigger_by", "usage_category")},
)
_TRIGGERS_OF = (
    select(usage_triggers)
    .where(usage_triggers.c.account_sid == bindparam("match_account"))
    .order_by(usage_triggers.c.date_created.desc(), usage_triggers.c.sid.desc())
)


def insert_webhook(
    c: Connection, *, now: datetime, call_sid: str | None = None, **request: Any
) -> bool:
    """Queue a request in the webhook outbox inside the caller's transaction (the
    outbox's worker delivers it); False when ``delivery_id`` is queued already.
    ``request``: delivery_id, account_sid, url, method, params (``outbox_row``)."""
    try:
        with c.begin_nested():
            c.execute(
                insert(webhook_outbox).values(**outbox_row(now=now, call_sid=call_sid, **request))
            )
    except IntegrityError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class UsageItem:
    """One priced call or message."""

    source_sid: str
    account_sid: str
    category: str
    usage: int  # minutes or segments
    price: Decimal  # positive: what it cost
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class UsageSum:
    """Sums of one stored category over a range (reference §8 count/usage/price)."""

    count: int
    usage: int
    price: Decimal


@dataclass
class UsageTriggerRecord:
    """A usage trigger as stored (reference §8, Usage/Triggers)."""

    sid: str
    account_sid: str
    callback_url: str
    trigger_value: str
    usage_category: str
    friendly_name: str | None = None
    callback_method: str = "POST"
    recurring: str | None = None
    trigger_by: str = "usage"
    current_value: str = "0"
    date_fired: datetime | None = None
    date_created: datetime | None = None
    date_updated: datetime | None = None


_TRIGGER_UPDATABLE = updatable(UsageTriggerRecord, "sid", "account_sid", "date_created")


_trigger = reader(UsageTriggerRecord)


class BillingStore:
    """Usage, triggers and balances on the store's database; each method one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.run = group_commit(db).run  # small writes from many messages commit together
        self.triggers = Rows(db, usage_triggers, _trigger, run=self.run)

    # Usage

    async def record_usage(self, item: UsageItem) -> tuple[bool, Decimal | None]:
        """Store a priced item and charge the balance: (False, _) if it was priced
        already, else (True, the balance after, or None when the account has none)."""

        row_values = {
            "source_sid": item.source_sid,
            "account_sid": item.account_sid,
            "category": item.category,
            "usage": item.usage,
            "price": str(item.price),
            "occurred_at": item.occurred_at,
        }

        def work(c: Connection) -> tuple[bool, Decimal | None]:
            try:
                with c.begin_nested():
                    c.execute(_INSERT_USAGE, row_values)
            except IntegrityError:
                return False, None
            # FOR UPDATE: two items of one account priced at once on PostgreSQL must not
            # both read the old balance (SQLite has one writer and leaves the clause out).
            row = c.execute(_BALANCE_FOR_UPDATE, {"match_account": item.account_sid}).first()
            if row is None:
                return True, None
            balance = Decimal(row.balance) - item.price
            c.execute(
                _SET_BALANCE,
                {
                    "match_account": item.account_sid,
                    "new_balance": str(balance),
                    "new_date": item.occurred_at,
                },
            )
            return True, balance

        return await self.run(work)

    async def usage_sums(
        self,
        account_sid: str,
        start: datetime | None,
        end: datetime | None,
    ) -> dict[str, UsageSum]:
        """Count, usage and price per stored category for items in [start, end)."""
        t = usage_items.c
        conditions = [t.account_sid == account_sid]
        if start is not None:
            conditions.append(t.occurred_at >= start)
        if end is not None:
            conditions.append(t.occurred_at < end)
        query = (
            select(t.category, func.count(), func.sum(t.usage), t.price)
            .where(*conditions)
            .group_by(t.category, t.price)
        )
        rows = await self.run(lambda c: c.execute(query).all())
        sums: dict[str, UsageSum] = {}
        # Grouped by price as well, so that prices add up exactly as decimals.
        for category, count, usage, price in rows:
            before = sums.get(category, UsageSum(0, 0, Decimal(0)))
            sums[category] = UsageSum(
                before.count + count,
                before.usage + int(usage or 0),
                before.price + Decimal(price) * count,
            )
        return sums

    async def first_usage_at(self, account_sid: str) -> datetime | None:
        query = select(func.min(usage_items.c.occurred_at)).where(
            usage_items.c.account_sid == account_sid
        )
        return await self.run(lambda c: c.execute(query).scalar_one_or_none())

    async def usage_count(self) -> int:
        query = select(func.count()).select_from(usage_items)
        return await self.run(lambda c: c.execute(query).scalar_one())

    # Balances

    async def get_balance(self, account_sid: str) -> Decimal | None:
        """The account's balance, or None when it has none (usage is not limited)."""
        query = select(account_balances.c.balance).where(
            account_balances.c.account_sid == account_sid
        )
        value = await self.run(lambda c: c.execute(query).scalar_one_or_none())
        return None if value is None else Decimal(value)

    async def set_balance(self, account_sid: str, balance: Decimal, currency: str = "USD") -> None:
        now = utcnow()

        change = (
            update(account_balances)
            .where(account_balances.c.account_sid == account_sid)
            .values(balance=str(balance), currency=currency, date_updated=now)
        )

        def work(c: Connection) -> None:
            if c.execute(change).rowcount:
                return
            try:
                with c.begin_nested():
                    c.execute(
                        insert(account_balances).values(
                            account_sid=account_sid,
                            balance=str(balance),
                            currency=currency,
                            date_updated=now,
                        )
                    )
            except IntegrityError:  # another node inserted it first: set it there
                c.execute(change)

        await self.run(work)

    # Triggers

    async def insert_trigger(self, record: UsageTriggerRecord) -> UsageTriggerRecord:
        stamp(record)
        statement = insert(usage_triggers).values(**vars(record))
        await self.run(lambda c: c.execute(statement))
        return record

    async def get_trigger(self, account_sid: str, sid: str) -> UsageTriggerRecord | None:
        t = usage_triggers.c
        return await self.triggers.one(t.account_sid == account_sid, t.sid == sid)

    async def list_triggers(
        self, account_sid: str, *, offset: int = 0, limit: int = 1000, **filters: Any
    ) -> list[UsageTriggerRecord]:
        """The account's triggers, newest first; ``filters``: recurring, trigger_by,
        usage_category."""
        where = usage_triggers.c.account_sid == account_sid
        return await self.triggers.listed(_TRIGGERS, filters, offset, limit, where)

    async def triggers_of(self, account_sid: str) -> list[UsageTriggerRecord]:
        """Every trigger of the account, newest first (checked after each priced item)."""
        params = {"match_account": account_sid}
        rows = await self.run(lambda c: c.execute(_TRIGGERS_OF, params).all())
        return [_trigger(row) for row in rows]

    async def update_trigger(
        self, account_sid: str, sid: str, **values: Any
    ) -> UsageTriggerRecord | None:
        t = usage_triggers.c
        where = (t.account_sid == account_sid, t.sid == sid)
        return await self.triggers.change("update_trigger", _TRIGGER_UPDATABLE, values, *where)

    async def delete_trigger(self, account_sid: str, sid: str) -> bool:
        t = usage_triggers.c

        def work(c: Connection) -> bool:
            result = c.execute(
                usage_triggers.delete().where(t.account_sid == account_sid, t.sid == sid)
            )
            if result.rowcount:
                c.execute(
                    usage_trigger_firings.delete().where(usage_trigger_firings.c.trigger_sid == sid)
                )
            return result.rowcount > 0

        return await self.run(work)

    async def fire_trigger(
        self,
        trigger: UsageTriggerRecord,
        period: str,
        current_value: str,
        now: datetime,
        callback: list[tuple[str, str]],
    ) -> bool:
        """Record that ``trigger`` fired in ``period`` and queue its callback, together;
        False (and nothing queued) if it fired in that period already."""

        def work(c: Connection) -> bool:
            try:
                with c.begin_nested():
                    c.execute(
                        insert(usage_trigger_firings).values(
                            trigger_sid=trigger.sid, period=period, fired_at=now
                        )
                    )
            except IntegrityError:
                return False
            c.execute(
                update(usage_triggers)
                .where(usage_triggers.c.sid == trigger.sid)
                .values(current_value=current_value, date_fired=now, date_updated=now)
            )
            insert_webhook(
                c,
                delivery_id=f"{trigger.sid}-{period}",
                account_sid=trigger.account_sid,
                url=trigger.callback_url,
                method=trigger.callback_method,
                params=callback,
                now=now,
            )
            return True

        return await self.run(work)

    async def queue_webhook(self, **values: Any) -> bool:
        """``insert_webhook`` in a transaction of its own (grouped with others)."""
        return await self.run(lambda c: insert_webhook(c, **values))

    async def fired_in(self, trigger_sid: str, period: str) -> bool:
        f = usage_trigger_firings.c
        query = select(func.count()).where(f.trigger_sid == trigger_sid, f.period == period)
        return bool(await self.run(lambda c: c.execute(query).scalar_one()))
