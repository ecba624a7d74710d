"""The store's view of the nodes sharing it: heartbeats, and the calls a lost node held.

Each node upserts its row (``nodes``) on start and bumps ``heartbeat_at`` while it
runs. A node is lost when it restarts (it held its calls in memory) or when its
heartbeat is older than the lease. Its non-final calls are then ended with one
conditional UPDATE each (``WHERE status = <the status read>``): when two nodes reap the
same call at once, exactly one UPDATE changes the row, and only that node prices it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from control_api.store.engine import Database
from control_api.store.rows import Rows, parties, reader
from control_api.store.schema import calls, nodes, outbox_row, webhook_outbox

__all__ = ["LIVE_STATUSES", "LostCall", "NodeRecord", "NodeStore"]

# A call in one of these is held in some node's memory; the rest are final.
LIVE_STATUSES = ("queued", "ringing", "in-progress")


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node_id: str
    url: str
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class LostCall:
    """A call ended because the node holding it was lost; this node ended it."""

    sid: str
    account_sid: str
    direction: str
    to: str
    from_: str
    answered: bool
    end_time: datetime
    duration: int


_node = reader(NodeRecord)


class NodeStore:
    """Rows of ``nodes`` and the ending of lost nodes' calls."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rows = Rows(db, nodes, _node)

    async def register(self, node_id: str, url: str, now: datetime) -> NodeRecord | None:
        """Record that ``node_id`` (re)starts now; the row its previous run left, if any."""

        def work(c: Connection) -> NodeRecord | None:
            row = c.execute(
                select(nodes).where(nodes.c.node_id == node_id).with_for_update()
            ).first()
            values = {"url": url, "started_at": now, "heartbeat_at": now}
            if row is not None:
                c.execute(update(nodes).where(nodes.c.node_id == node_id).values(**values))
                return _node(row)
            try:
                with c.begin_nested():
                    c.execute(insert(nodes).values(node_id=node_id, **values))
            except IntegrityError:  # a twin with our id inserted first: take the row over
                c.execute(update(nodes).where(nodes.c.node_id == node_id).values(**values))
            return None

        return await self.db.run(work)

    async def heartbeat(self, node_id: str, url: str, now: datetime) -> None:
        def work(c: Connection) -> None:
            result = c.execute(
                update(nodes).where(nodes.c.node_id == node_id).values(heartbeat_at=now, url=url)
            )
            if result.rowcount == 0:  # removed by hand while we ran: come back
                c.execute(
                    insert(nodes).values(node_id=node_id, url=url, started_at=now, heartbeat_at=now)
                )

        await self.db.run(work)

    async def get(self, node_id: str) -> NodeRecord | None:
        return await self.rows.one(nodes.c.node_id == node_id)

    async def stale_with_calls(self, older_than: datetime, exclude: str) -> list[NodeRecord]:
        """Nodes whose heartbeat is older than ``older_than`` and that still hold calls."""
        held = select(calls.c.node_id).where(calls.c.status.in_(LIVE_STATUSES))
        query = select(nodes).where(
            nodes.c.heartbeat_at < older_than,
            nodes.c.node_id != exclude,
            nodes.c.node_id.in_(held),
        )
        return await self.rows.all(query)

    async def end_lost_calls(
        self,
        node_id: str,
        last_seen: datetime,
        now: datetime,
        price_of,
        *,
        silent_since: datetime | None = None,
        callback_of=None,
    ) -> list[LostCall]:
        """Mark every non-final call of ``node_id`` failed; the ones this call changed.

        A call ends at ``last_seen`` (when its node was last known alive), or when it
        started if that is later; its duration counts only if it had been answered.
        ``price_of(call)`` gives the price string written with it (None: unpriced), so
        that a stop between this and the usage item still leaves the price to reconcile.
        With ``silent_since``, a call is ended only while its node's heartbeat is still
        older than that: a node that came back in between keeps its calls.

        A call whose application asked for its final status callback gets it queued in
        the outbox in the same transaction: ``callback_of(call, params, sequence)``
        gives its parameters from the call's stored ones and the callbacks queued for
        it before (so a crash between the two writes can neither lose nor repeat it).
        """
        still_silent = (
            exists()
            .where(nodes.c.node_id == node_id, nodes.c.heartbeat_at < silent_since)
            .correlate(None)
            if silent_since is not None
            else None
        )
        query = select(calls).where(calls.c.node_id == node_id, calls.c.status.in_(LIVE_STATUSES))
        rows = await self.db.run(lambda c: c.execute(query).all())
        ended = []
        for row in rows:
            answered = row.status == "in-progress"
            started = row.start_time or row.date_created
            end = max(last_seen, started)
            duration = max(0, round((end - started).total_seconds())) if answered else 0
            lost = LostCall(**parties(row), answered=answered, end_time=end, duration=duration)
            statement = (
                update(calls)
                .where(
                    calls.c.sid == row.sid,
                    calls.c.status == row.status,
                    *([still_silent] if still_silent is not None else []),
                )
                .values(
                    status="failed",
                    end_time=end,
                    duration=duration,
                    price=price_of(lost),
                    date_updated=now,
                )
            )
            callback = (
                (row.final_callback, row.final_callback_method or "POST", row.callback_params)
                if callback_of is not None and row.final_callback
                else None
            )

            def work(
                c: Connection,
                s: Any = statement,
                lost: LostCall = lost,
                callback: tuple[str, str, Any] | None = callback,
            ) -> bool:
                if c.execute(s).rowcount != 1:
                    return False
                if callback is not None:
                    url, method, params = callback
                    _queue_final_callback(c, lost, url, method, params, callback_of, now)
                return True

            if await self.db.run(work):
                ended.append(lost)
        return ended


def _queue_final_callback(c: Connection, lost: LostCall, url, method, params, callback_of, now):
    """The lost call's final status callback into the outbox, numbered after the
    callbacks its node queued for it."""
    o = webhook_outbox.c
    sequence = c.execute(
        select(func.count()).where(o.call_sid == lost.sid, o.url == url)
    ).scalar_one()
    row = outbox_row(
        delivery_id=f"lost-{lost.sid}",
        account_sid=lost.account_sid,
        url=url,
        method=method,
        params=callback_of(lost, params or [], sequence),
        call_sid=lost.sid,
        now=now,
    )
    c.execute(insert(webhook_outbox).values(**row))
