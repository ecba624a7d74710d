"""What every resource of the store shares: checks on the values written, and one way
to read, page through, count, change and delete the rows of a table.

A resource class (``calls.CallStore``, ``numbers.NumberStore``, ...) keeps a
:class:`Rows` over its table and says only what is its own: the filters, the order,
how a row becomes its record. Each method of ``Rows`` is one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from control_api.sids import new_sid, utcnow
from control_api.store.engine import Database
from control_api.store.schema import metadata

__all__ = [
    "MAX_FRIENDLY_NAME",
    "Listing",
    "Owned",
    "Rows",
    "TextTooLong",
    "as_row",
    "attributes_of",
    "columns_of",
    "created",
    "fit",
    "friendly_name",
    "parties",
    "reader",
    "stamp",
    "updatable",
]

R = TypeVar("R")
T = TypeVar("T")
Run = Callable[[Callable[[Connection], T]], Awaitable[T]]

MAX_FRIENDLY_NAME = 64


class TextTooLong(ValueError):
    """A text value is longer than its column holds (PostgreSQL enforces ``String(n)``)."""

    def __init__(self, table: str, column: str, length: int) -> None:
        super().__init__(f"{table}.{column} holds at most {length} characters")
        self.column = column
        self.length = length


# The declared length of each bounded text column, by table.
_LENGTHS: dict[Table, dict[str, int]] = {
    table: {
        column.name: column.type.length
        for column in table.c
        if isinstance(column.type, String) and column.type.length
    }
    for table in metadata.tables.values()
}


def fit(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` if every text fits its column, else ``TextTooLong``: PostgreSQL refuses
    a longer value where SQLite would keep it, and the two must answer alike."""
    lengths = _LENGTHS[table]
    for name, value in values.items():
        limit = lengths.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise TextTooLong(table.name, name, limit)
    return values


def friendly_name(name: str) -> str:
    """``name`` if it has 1 to 64 characters; else ValueError."""
    if not 1 <= len(name) <= MAX_FRIENDLY_NAME:
        raise ValueError(f"a friendly name has 1 to {MAX_FRIENDLY_NAME} characters")
    return name


def as_row(record: Any) -> dict[str, Any]:
    """A dataclass record's fields, by name."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def created(record_type: Callable[..., R], prefix: str, **fields: Any) -> R:
    """A new record: a fresh SID of ``prefix``, created and last updated now."""
    now = utcnow()
    return record_type(sid=new_sid(prefix), date_created=now, date_updated=now, **fields)


def stamp(record: Any) -> None:
    """Fill in a new record's ``date_created`` (now) and ``date_updated`` (the same)
    where they are None."""
    record.date_created = record.date_created or utcnow()
    record.date_updated = record.date_updated or record.date_created


def updatable(record_type: Any, *fixed: str) -> frozenset[str]:
    """The fields of a record type an update may change: all but ``fixed``."""
    return frozenset(f.name for f in fields(record_type)) - set(fixed)


# Record attribute -> column, where they differ (SQL keywords): calls and messages.
_COLUMN = {"to": "to_address", "from_": "from_address"}
_ATTRIBUTE = {column: attribute for attribute, column in _COLUMN.items()}


def columns_of(values: dict[str, Any]) -> dict[str, Any]:
    """Record attributes named as their columns (``to`` is ``to_address``, ...)."""
    return {_COLUMN.get(name, name): value for name, value in values.items()}


def attributes_of(row: Row[Any]) -> dict[str, Any]:
    """A row's columns named as record attributes (``to_address`` is ``to``, ...)."""
    return {_ATTRIBUTE.get(name, name): value for name, value in row._mapping.items()}


def reader(record_type: Callable[..., R]) -> Callable[[Row[Any]], R]:
    """What makes a row into a record whose fields are the table's columns, by name."""

    def read(row: Row[Any]) -> R:
        return record_type(**row._mapping)

    return read


_PARTIES = ("sid", "account_sid", "direction", "to", "from_")


def parties(source: Row[Any] | Any) -> dict[str, Any]:
    """Who a call or message is between: its sid, account, direction and both addresses,
    named as record attributes (``to``, ``from_``); of a calls or messages row, or of a
    record (``CallRecord``, ``MessageRecord``)."""
    if isinstance(source, Row):
        attributes = attributes_of(source)
        return {name: attributes[name] for name in _PARTIES}
    return {name: getattr(source, name) for name in _PARTIES}


@dataclass(frozen=True)
class Listing:
    """How a resource's list is ordered and which filters it takes.

    ``equal``: a filter name and the column it must equal. ``ranges``: a name and a
    column, filtered by ``<name>_after`` (inclusive, >=) and ``<name>_before``
    (exclusive, <); a row without that value never matches a bound on it. ``custom``:
    a name and the condition it makes of its value. A filter given as None is left
    out; a name the listing does not know is a TypeError.
    """

    order_by: tuple[Any, ...]
    equal: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Callable[[Any], ColumnElement[bool]]] = field(default_factory=dict)

    def where(self, filters: dict[str, Any]) -> list[ColumnElement[bool]]:
        conditions = []
        for name, value in filters.items():
            column, compare = self._filter(name)
            if value is not None:
                conditions.append(compare(column, value))
        return conditions

    def _filter(self, name: str) -> tuple[Any, Callable[[Any, Any], ColumnElement[bool]]]:
        if name in self.custom:
            return self.custom[name], lambda condition, value: condition(value)
        if name in self.equal:
            return self.equal[name], lambda column, value: column == value
        base, _, bound = name.rpartition("_")
        if base in self.ranges and bound == "after":
            return self.ranges[base], lambda column, value: column >= value
        if base in self.ranges and bound == "before":
            return self.ranges[base], lambda column, value: column < value
        raise TypeError(f"no filter {name!r}")


class Rows(Generic[R]):
    """Reads and writes of one table whose rows become records of type ``R``.

    ``run`` runs a unit of work in a transaction: the database's own (``Database.run``)
    unless given, such as a ``GroupCommit``'s, whose small writes commit together.
    """

    def __init__(
        self,
        db: Database,
        table: Table,
        record: Callable[[Row[Any]], R],
        *,
        run: Run[Any] | None = None,
    ) -> None:
        self.db = db
        self.table = table
        self.record = record
        self.run: Run[Any] = run if run is not None else db.run

    async def insert(self, record: R) -> R:
        """Insert a record (a dataclass whose fields are the columns), ``stamp``ed."""
        stamp(record)
        statement = insert(self.table).values(**fit(self.table, vars(record)))
        await self.run(lambda c: c.execute(statement))
        return record

    async def one(self, *where: Any) -> R | None:
        """The first row that matches, or None."""
        query = select(self.table).where(*where)
        row = await self.run(lambda c: c.execute(query).first())
        return self.record(row) if row is not None else None

    async def newest(self, *where: Any, by: Sequence[Any]) -> R | None:
        """Of the rows that match, the one latest in ``by`` (columns, most significant
        first), or None."""
        query = select(self.table).where(*where).order_by(*(c.desc() for c in by)).limit(1)
        return await self.first(query)

    async def first(self, query: Select[Any]) -> R | None:
        """The first row ``query`` (a select of the whole table) finds, or None."""
        row = await self.run(lambda c: c.execute(query).first())
        return self.record(row) if row is not None else None

    async def all(self, query: Select[Any]) -> list[R]:
        """Every row ``query`` (a select of the whole table) finds."""
        rows = await self.run(lambda c: c.execute(query).all())
        return [self.record(row) for row in rows]

    async def page(
        self, where: Iterable[Any], order_by: Iterable[Any], offset: int, limit: int
    ) -> list[R]:
        """One page of the rows that match, in ``order_by`` order."""
        query = select(self.table).where(*where).order_by(*order_by).offset(offset).limit(limit)
        return await self.all(query)

    async def listed(
        self,
        listing: Listing,
        filters: dict[str, Any],
        offset: int,
        limit: int,
        *where: Any,
    ) -> list[R]:
        """One page of the rows that match ``where`` and ``filters`` (``listing``'s)."""
        conditions = [*where, *listing.where(filters)]
        return await self.page(conditions, listing.order_by, offset, limit)

    async def count(self, *where: Any) -> int:
        query = select(func.count()).select_from(self.table).where(*where)
        count: int = await self.run(lambda c: c.execute(query).scalar_one())
        return count

    async def delete(self, *where: Any) -> int:
        """Delete the rows that match; how many went."""
        statement = self.table.delete().where(*where)
        result = await self.run(lambda c: c.execute(statement))
        rowcount: int = result.rowcount
        return rowcount

    async def update_one(self, where: Iterable[Any], values: dict[str, Any]) -> R | None:
        """Set ``values`` on the row that matches; the row after, or None if none does."""
        conditions = tuple(where)

        def work(c: Connection) -> Any:
            c.execute(update(self.table).where(*conditions).values(**values))
            return c.execute(select(self.table).where(*conditions)).first()

        row = await self.run(work)
        return self.record(row) if row is not None else None

    async def change(
        self, name: str, allowed: frozenset[str], fields: dict[str, Any], *where: Any
    ) -> R | None:
        """``update_one`` of record attributes, checked against ``allowed`` (else a
        TypeError naming the method ``name``); ``date_updated`` is now unless given."""
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"{name}() cannot change {sorted(unknown)}")
        fields.setdefault("date_updated", utcnow())
        return await self.update_one(where, fit(self.table, fields))


class Owned(Generic[R]):
    """A resource whose rows belong to an account (``account_sid``) and are named by a
    SID (``sid``): get, delete and list them so. A subclass sets ``rows`` and
    ``listing``; an account never sees another's rows."""

    rows: Rows[R]
    listing: Listing

    async def get(self, account_sid: str, sid: str) -> R | None:
        return await self.rows.one(*self.owned(account_sid, sid))

    async def delete(self, account_sid: str, sid: str) -> bool:
        return await self.rows.delete(*self.owned(account_sid, sid)) > 0

    async def page(
        self, account_sid: str, *, offset: int = 0, limit: int = 50, **filters: Any
    ) -> list[R]:
        """One page of the account's rows in ``listing`` order; ``filters`` as
        ``listing`` takes them."""
        owner = self.rows.table.c.account_sid == account_sid
        return await self.rows.listed(self.listing, filters, offset, limit, owner)

    def owned(self, account_sid: str, sid: str) -> tuple[ColumnElement[bool], ...]:
        """The conditions that match the account's row of that SID."""
        t = self.rows.table.c
        return (t.account_sid == account_sid, t.sid == sid)
