"""One node among several sharing a store: its heartbeat, and the calls lost nodes held.

A call lives in the memory of the process that took it (its SIP dialog, its media);
the store only records which node that is (``calls.node_id``). When the process goes,
nobody will write the call's end: so a node starting under an id marks the calls its
previous run held as failed, and every node, on each heartbeat, does the same for a
peer whose heartbeat is older than the lease (``--node-lease``). Each lost call is
priced through the usual billing path for the minutes it was answered, up to when its
node was last known alive, and gets the final status callback its application asked
for (``CallStatus=failed``), queued with the change of status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from control_api.sids import utcnow
from control_api.status_callbacks import callback_params
from control_api.store import LostCall, NodeRecord

__all__ = ["Node"]

log = logging.getLogger("callswitch.cluster")

HEARTBEATS_PER_LEASE = 3


class Node:
    """This process as a node: ``start`` registers it and ends what its last run lost;
    then it heartbeats and reaps lost peers until ``stop``."""

    def __init__(
        self,
        store,
        node_id: str,
        url: str,
        *,
        lease_s: float,
        billing=None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.nodes = store.nodes
        self.node_id = node_id
        self.url = url.rstrip("/")
        self.lease = timedelta(seconds=lease_s)
        self.billing = billing  # control_api.usage.billing.Billing, or None
        self.clock = clock
        self._task: asyncio.Task | None = None
        store.calls.node_id = node_id  # calls inserted from now on are stamped with it

    async def start(self) -> int:
        """Register; end the calls this node's previous run held. Returns how many.

        Call before the node takes calls: every non-final call under our id is lost.
        """
        now = self.clock()
        previous = await self.nodes.register(self.node_id, self.url, now)
        last_seen = previous.heartbeat_at if previous is not None else now
        lost = await self._end_calls_of(self.node_id, last_seen)
        self._task = asyncio.ensure_future(self._run())
        return lost

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        interval = self.lease.total_seconds() / HEARTBEATS_PER_LEASE
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
            except Exception:  # the store may be away for a moment: try again next beat
                log.exception("node.heartbeat_failed")

    async def beat(self) -> int:
        """One heartbeat, then reap lost peers; returns how many calls were ended."""
        now = self.clock()
        await self.nodes.heartbeat(self.node_id, self.url, now)
        ended = 0
        cutoff = now - self.lease
        for peer in await self.nodes.stale_with_calls(cutoff, exclude=self.node_id):
            ended += await self._end_calls_of(peer.node_id, peer.heartbeat_at, cutoff)
        return ended

    async def _end_calls_of(
        self, node_id: str, last_seen: datetime, silent_since: datetime | None = None
    ) -> int:
        price_of = self.billing.lost_call_price if self.billing is not None else _free
        lost = await self.nodes.end_lost_calls(
            node_id,
            last_seen,
            self.clock(),
            price_of,
            silent_since=silent_since,
            callback_of=_final_callback,
        )
        for call in lost:
            if self.billing is not None:
                try:
                    await self.billing.call_lost(call)
                except Exception:  # priced on the record: reconcile charges it on start
                    log.exception("node.lost_call_billing_failed", extra={"call_sid": call.sid})
        if lost:
            log.info(
                "node.calls_lost",
                extra={
                    "node_id": node_id,
                    "calls": len(lost),
                    "last_seen": last_seen.isoformat(),
                    "by": self.node_id,
                },
            )
        return len(lost)

    async def live_peer(self, node_id: str) -> NodeRecord | None:
        """``node_id``'s row when it is another node whose heartbeat is within the lease."""
        if node_id == self.node_id:
            return None
        peer = await self.nodes.get(node_id)
        if peer is None or peer.heartbeat_at < self.clock() - self.lease:
            return None
        return peer


def _free(_call: LostCall) -> None:
    return None


def _final_callback(call: LostCall, params, sequence: int) -> list[tuple[str, str]]:
    """The status callback of a lost call: failed, with the duration it was answered."""
    seconds = str(call.duration)
    return callback_params(params, "failed", sequence, CallDuration=seconds, Duration=seconds)
