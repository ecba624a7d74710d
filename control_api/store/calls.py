"""Calls as the REST API shows them; the call engine writes each as the call moves on."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Row

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.group import group_commit
from control_api.store.rows import Listing, Owned, Rows, attributes_of, columns_of, fit, stamp
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


def _call_record(row: Row[Any]) -> CallRecord:
    return CallRecord(**attributes_of(row))


# to, from_, status, parent_call_sid; start_time_after (>=), start_time_before (<),
# end_time_after, end_time_before: a call without that time never matches a bound on it.
_LISTING = Listing(
    order_by=(calls.c.date_created.desc(), calls.c.sid.desc()),
    equal={
        "to": calls.c.to_address,
        "from_": calls.c.from_address,
        "status": calls.c.status,
        "parent_call_sid": calls.c.parent_call_sid,
    },
    ranges={"start_time": calls.c.start_time, "end_time": calls.c.end_time},
)


class CallStore(Owned[CallRecord]):
    """The calls of every account; inserts and updates commit in groups (group.py).
    ``page`` and ``count`` take the filters of ``_LISTING``; newest first."""

    listing = _LISTING

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
        stamp(record)
        record.node_id = record.node_id or self.node_id
        await self.group.insert(calls, fit(calls, columns_of(vars(record))))
        return record

    async def update(self, sid: str, **fields: Any) -> bool:
        """Change ``fields`` (CallRecord attributes) of a call; False if there is no such
        call. ``date_updated`` is set to now unless given."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise TypeError(f"update_call() cannot change {sorted(unknown)}")
        fields.setdefault("date_updated", utcnow())
        statement = update(calls).where(calls.c.sid == sid).values(**fit(calls, columns_of(fields)))
        changed: bool = await self.group.run(lambda c: c.execute(statement).rowcount > 0)
        return changed

    async def count(self, account_sid: str, **filters: Any) -> int:
        """How many of the account's calls match ``filters`` (``_LISTING``'s)."""
        return await self.rows.count(calls.c.account_sid == account_sid, *_LISTING.where(filters))
