"""An account's named lists and their entries: SIP credential lists (CL…) of
credentials, IP access control lists (AL…) of addresses. An entry belongs to one list
of its account; a list goes with its entries, and an entry is added only to a list
that stays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Executable, Table, insert, select
from sqlalchemy.engine import Connection

from control_api.store.rows import Owned, Rows

__all__ = ["Entries", "Lists", "NamedList", "delete_list", "insert_in_list"]

R = TypeVar("R")
L = TypeVar("L", bound="NamedList")


@dataclass(slots=True)
class NamedList:
    """An account's named list, as each kind of list stores it."""

    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime


def insert_in_list(
    lists: Table, account_sid: str, list_sid: str, table: Table, values: dict[str, Any]
) -> Callable[[Connection], bool]:
    """The unit of work that inserts ``values`` into ``table`` if the account has the
    list ``list_sid`` (a row of ``lists``), and says whether it did. The list is read
    FOR KEY SHARE: it cannot be deleted between this check and the insert."""
    t = lists.c
    locked = (
        select(t.sid)
        .where(t.account_sid == account_sid, t.sid == list_sid)
        .with_for_update(read=True, key_share=True)
    )
    statement = insert(table).values(**values)

    def work(c: Connection) -> bool:
        if c.execute(locked).first() is None:
            return False
        c.execute(statement)
        return True

    return work


def delete_list(
    lists: Table,
    account_sid: str,
    list_sid: str,
    entries: Table,
    list_column: str,
    *also: Executable,
) -> Callable[[Connection], bool]:
    """The unit of work that deletes the account's list ``list_sid`` (a row of
    ``lists``), its entries (the rows of ``entries`` whose ``list_column`` is the list)
    and what the statements ``also`` delete, and says whether there was such a list.
    The list is read FOR UPDATE first (PostgreSQL; SQLite has one writer anyway): that
    waits for entries being added to it (``insert_in_list``), so that deleting them
    sees them all."""
    where = (lists.c.account_sid == account_sid, lists.c.sid == list_sid)
    locked = select(lists.c.sid).where(*where).with_for_update()

    def work(c: Connection) -> bool:
        if c.execute(locked).first() is None:
            return False
        c.execute(entries.delete().where(entries.c[list_column] == list_sid))
        for statement in also:
            c.execute(statement)
        c.execute(lists.delete().where(*where))
        return True

    return work


class Entries(Generic[R]):
    """A resource whose rows are entries of an account's list (a SIP credential in a
    credential list, an address in an IP access control list), named by the account,
    the list (the column ``list_column``) and their own SID. A subclass sets ``rows``
    and ``list_column``."""

    rows: Rows[R]
    list_column: str

    async def get(self, account_sid: str, list_sid: str, sid: str) -> R | None:
        return await self.rows.one(*self.within(account_sid, list_sid, sid))

    async def delete(self, account_sid: str, list_sid: str, sid: str) -> bool:
        return await self.rows.delete(*self.within(account_sid, list_sid, sid)) > 0

    async def page(
        self, account_sid: str, list_sid: str, *, offset: int = 0, limit: int = 50
    ) -> list[R]:
        """The list's entries, oldest first."""
        t = self.rows.table.c
        where = self.within(account_sid, list_sid)
        return await self.rows.page(where, (t.date_created, t.sid), offset, limit)

    def within(
        self, account_sid: str, list_sid: str, sid: str | None = None
    ) -> tuple[ColumnElement[bool], ...]:
        """The conditions that match the account's entries of the list (that of
        ``sid``, if given)."""
        t = self.rows.table.c
        where = (t.account_sid == account_sid, t[self.list_column] == list_sid)
        return where if sid is None else (*where, t.sid == sid)


class Lists(Owned[L]):
    """An account's named lists of one kind (``Owned``), whose entries are the rows of
    ``entry_table`` with the list's SID in ``entry_column``. A subclass sets those,
    ``rows`` and ``listing``."""

    entry_table: Table
    entry_column: str

    def also_deleted(self, account_sid: str, sid: str) -> tuple[Executable, ...]:
        """What goes with the list besides its entries (nothing, unless overridden)."""
        return ()

    async def delete(self, account_sid: str, sid: str) -> bool:
        """Delete a list, every entry in it and what ``also_deleted`` names."""
        also = self.also_deleted(account_sid, sid)
        work = delete_list(
            self.rows.table, account_sid, sid, self.entry_table, self.entry_column, *also
        )
        deleted: bool = await self.rows.run(work)
        return deleted
