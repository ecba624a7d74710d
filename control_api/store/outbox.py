"""The durable webhook outbox: requests waiting for delivery, claimed by one node at a
time, and how each attempt ended."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from control_api.store.engine import Database
from control_api.store.rows import Rows, fit
from control_api.store.schema import outbox_row, webhook_outbox

__all__ = ["OutboxItem", "OutboxOutcome", "OutboxStore"]


@dataclass(slots=True)
class OutboxItem:
    """One webhook request waiting in (or done with) the durable outbox."""

    id: int
    delivery_id: str
    account_sid: str
    url: str
    method: str
    params: list[tuple[str, str]]
    call_sid: str | None
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    abandoned_at: datetime | None
    last_error: str | None
    claimed_by: str | None = None
    claimed_until: datetime | None = None


@dataclass(slots=True)
class OutboxOutcome:
    """How one delivery attempt of a claimed item ended: the columns to set."""

    id: int
    delivered_at: datetime | None = None
    abandoned_at: datetime | None = None
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None


def _outbox_item(row: Row[Any]) -> OutboxItem:
    values = dict(row._mapping)
    values["params"] = [(str(name), str(value)) for name, value in values["params"]]
    return OutboxItem(**values)


def _pending() -> ColumnElement[bool]:
    return and_(webhook_outbox.c.delivered_at.is_(None), webhook_outbox.c.abandoned_at.is_(None))


class OutboxStore:
    """The webhook outbox's rows."""

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, webhook_outbox, _outbox_item)

    async def enqueue(
        self,
        *,
        delivery_id: str,
        account_sid: str,
        url: str,
        method: str,
        params: Iterable[tuple[str, str]],
        call_sid: str | None = None,
        now: datetime,
    ) -> int:
        """Queue a request, due at ``now``; returns its id.

        ``delivery_id`` makes this idempotent: enqueueing the same id again returns the
        first item's id and changes nothing.
        """
        row = outbox_row(
            delivery_id=delivery_id,
            account_sid=account_sid,
            url=url,
            method=method,
            params=params,
            call_sid=call_sid,
            now=now,
        )
        statement = insert(webhook_outbox).values(**fit(webhook_outbox, row))
        run = self.rows.run
        try:
            result = await run(lambda c: c.execute(statement))
            inserted: int = result.inserted_primary_key[0]
            return inserted
        except IntegrityError:
            query = select(webhook_outbox.c.id).where(webhook_outbox.c.delivery_id == delivery_id)
            existing: int | None = await run(lambda c: c.execute(query).scalar_one_or_none())
            if existing is None:
                raise
            return existing

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Items neither delivered nor abandoned whose next attempt is due, oldest first."""
        o = webhook_outbox.c
        where = (_pending(), o.next_attempt_at <= now)
        return await self.rows.page(where, (o.next_attempt_at, o.id), 0, limit)

    async def claim(
        self, claimant: str, now: datetime, lease_until: datetime, limit: int = 100
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due items for ``claimant`` until ``lease_until``, oldest
        first, and return them: items another node holds an unexpired claim on are not
        taken, so each item is delivered by one node at a time.

        On PostgreSQL the due rows are locked ``FOR UPDATE SKIP LOCKED``: two nodes
        claiming at once take different rows instead of waiting on each other. The
        UPDATE repeats the conditions, so a row another writer claimed between the
        select and the update stays theirs (SQLite's driver runs the select outside
        the transaction it opens for the update).
        """
        o = webhook_outbox.c
        unclaimed = (
            _pending(),
            o.next_attempt_at <= now,
            or_(o.claimed_until.is_(None), o.claimed_until <= now),
        )
        query = select(o.id).where(*unclaimed).order_by(o.next_attempt_at, o.id).limit(limit)

        def work(c: Connection) -> list[Any]:
            locked = query
            if c.dialect.name == "postgresql":
                locked = query.with_for_update(skip_locked=True)
            ids = list(c.execute(locked).scalars())
            if not ids:
                return []
            c.execute(
                update(webhook_outbox)
                .where(o.id.in_(ids), *unclaimed)
                .values(claimed_by=claimant, claimed_until=lease_until)
            )
            return list(
                c.execute(
                    select(webhook_outbox)
                    .where(o.id.in_(ids), o.claimed_by == claimant, o.claimed_until == lease_until)
                    .order_by(o.next_attempt_at, o.id)
                ).all()
            )

        return [_outbox_item(row) for row in await self.rows.run(work)]

    async def release_claims(self, claimant: str) -> int:
        """Drop every claim ``claimant`` holds on pending items (a node starting again
        under its old name takes back what it held when it died); returns how many."""
        o = webhook_outbox.c
        statement = (
            update(webhook_outbox)
            .where(o.claimed_by == claimant, _pending())
            .values(claimed_by=None, claimed_until=None)
        )
        result = await self.rows.run(lambda c: c.execute(statement))
        released: int = result.rowcount
        return released

    async def record_outcomes(self, outcomes: Iterable[OutboxOutcome]) -> None:
        """Write how claimed items' attempts ended, all in one transaction; each item's
        claim is released."""
        rows = [_outcome_values(outcome) for outcome in outcomes]
        if rows:
            await self.rows.run(lambda c: _record_outcomes(c, rows))

    async def get(self, id: int) -> OutboxItem | None:
        return await self.rows.one(webhook_outbox.c.id == id)

    async def mark_delivered(self, id: int, now: datetime) -> None:
        await self._update(id, delivered_at=now)

    async def reschedule(
        self, id: int, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._update(id, attempts=attempts, next_attempt_at=next_attempt_at, last_error=error)

    async def abandon(self, id: int, now: datetime, error: str) -> None:
        await self._update(id, abandoned_at=now, last_error=error)

    async def pending_count(self) -> int:
        """Items neither delivered nor abandoned, due or not."""
        return await self.rows.count(_pending())

    async def _update(self, id: int, **values: Any) -> None:
        statement = (
            update(webhook_outbox)
            .where(webhook_outbox.c.id == id)
            .values(**fit(webhook_outbox, values))
        )
        await self.rows.run(lambda c: c.execute(statement))


def _outcome_values(outcome: OutboxOutcome) -> dict[str, Any]:
    values = {f.name: getattr(outcome, f.name) for f in fields(outcome)}
    return {name: value for name, value in values.items() if value is not None}


def _record_outcomes(c: Connection, rows: list[dict[str, Any]]) -> None:
    """Attempt outcomes (from ``_outcome_values``) inside the caller's transaction, each
    releasing its item's claim: one executemany per kind of outcome."""
    o = webhook_outbox.c
    kinds: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in rows:
        names = tuple(sorted(name for name in values if name != "id"))
        kinds.setdefault(names, []).append(
            {"item_id": values["id"], **{f"new_{n}": values[n] for n in names}}
        )
    for names, params in kinds.items():
        statement = (
            update(webhook_outbox)
            .where(o.id == bindparam("item_id"))
            .values(
                claimed_by=None,
                claimed_until=None,
                **{name: bindparam(f"new_{name}") for name in names},
            )
        )
        c.execute(statement, params)
