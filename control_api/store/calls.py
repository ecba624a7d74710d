"""Calls as the REST API shows them; the call engine writes each as the call moves on."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.engine import Row

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.group import group_commit
from control_api.store.rows import Rows, equal_to, fit, time_range
from control_api.store.schema import calls

__all__ = ["CALL_FIELDS", "CallRecord", "CallStore"]


@dataclass
class CallRecord:
    """What the REST API shows of a call; the call engine writes it as the call moves on."""

    sid: str
    account_sid: str
    parent_call_sid: str | None = None
    to: str = ""
    from_: str = ""
    phone_number_sid: str | None = None
    status: str = "queued"
    direction: str = "inbound"
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    price: str | None = None
    price_unit: str = "USD"
    answered_by: str | None = None
    forwarded_from: str | None = None
    caller_name: str | None = None
    sip_call_id: str | None = None
    date_created: datetime | None = None  # None: set on insert
    date_updated: datetime | None = None  # None: set on insert and on every update
    node_id: str | None = None  # None: the store's node_id, set on insert
    # Where the final status callback goes and the call's webhook parameters, for the
    # node that ends the call if its own is lost (control_api/cluster/node.py).
    final_callback: str | None = None
    final_callback_method: str | None = None
    callback_params: list[list[str]] | None = None


CALL_FIELDS = frozenset(f.name for f in fields(CallRecord))
_UPDATABLE = CALL_FIELDS - {"sid", "account_sid", "date_created"}
# CallRecord attribute -> column, where they differ (SQL keywords).
_COLUMN = {"to": "to_address", "from_": "from_address"}
_ATTRIBUTE = {column: attribute for attribute, column in _COLUMN.items()}


def _call_row(values: dict[str, Any]) -> dict[str, Any]:
    return {_COLUMN.get(name, name): value for name, value in values.items()}


def _call_record(row: Row[Any]) -> CallRecord:
    return CallRecord(**{_ATTRIBUTE.get(k, k): v for k, v in row._mapping.items()})


class CallStore:
    """The calls of every account; inserts and updates commit in groups (group.py)."""

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, calls, _call_record)
        # Committed with the other calls' writes of the moment: each call writes its
        # record several times, many calls at once.
        self.group = group_commit(db)
        # This process's --node-id: calls it inserts are stamped with it, so that when
        # the process is lost the calls it held can be found (control_api/cluster/).
        self.node_id: str | None = None

    async def insert(self, record: CallRecord) -> CallRecord:
        """Store a new call; fills in ``date_created``/``date_updated`` if they are None."""
        record.date_created = record.date_created or utcnow()
        record.date_updated = record.date_updated or record.date_created
        record.node_id = record.node_id or self.node_id
        await self.group.insert(calls, fit(calls, _call_row(vars(record))))
        return record

    async def update(self, sid: str, **fields: Any) -> bool:
        """Change ``fields`` (CallRecord attributes) of a call; False if there is no such
        call. ``date_updated`` is set to now unless given."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise TypeError(f"update_call() cannot change {sorted(unknown)}")
        fields.setdefault("date_updated", utcnow())
        statement = update(calls).where(calls.c.sid == sid).values(**fit(calls, _call_row(fields)))
        changed: bool = await self.group.run(lambda c: c.execute(statement).rowcount > 0)
        return changed

    async def get(self, account_sid: str, sid: str) -> CallRecord | None:
        return await self.rows.one(calls.c.account_sid == account_sid, calls.c.sid == sid)

    async def page(
        self,
        account_sid: str,
        *,
        offset: int = 0,
        limit: int = 50,
        **filters: Any,
    ) -> list[CallRecord]:
        """The account's calls, newest first; ``filters`` as ``_call_filter`` takes them."""
        where = _call_filter(account_sid, **filters)
        order = (calls.c.date_created.desc(), calls.c.sid.desc())
        return await self.rows.page(where, order, offset, limit)

    async def count(self, account_sid: str, **filters: Any) -> int:
        """How many of the account's calls match ``filters`` (``_call_filter``)."""
        return await self.rows.count(*_call_filter(account_sid, **filters))

    async def delete(self, account_sid: str, sid: str) -> bool:
        return await self.rows.delete(calls.c.account_sid == account_sid, calls.c.sid == sid) > 0


def _call_filter(
    account_sid: str,
    *,
    to: str | None = None,
    from_: str | None = None,
    status: str | None = None,
    parent_call_sid: str | None = None,
    start_time_after: datetime | None = None,
    start_time_before: datetime | None = None,
    end_time_after: datetime | None = None,
    end_time_before: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The account's calls with these values; ``*_after`` bounds are inclusive (>=),
    ``*_before`` bounds exclusive (<); a call without that time never matches a bound
    on it."""
    c = calls.c
    return [
        c.account_sid == account_sid,
        *equal_to(
            (
                (c.to_address, to),
                (c.from_address, from_),
                (c.status, status),
                (c.parent_call_sid, parent_call_sid),
            )
        ),
        *time_range(c.start_time, start_time_after, start_time_before),
        *time_range(c.end_time, end_time_after, end_time_before),
    ]
