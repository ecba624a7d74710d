"""REST changes of a conference whose room is on another node, forwarded to that node.

A room lives on the node of its participants' calls (voice/conference.py).
``ClusterConferences`` is the ``LiveConferences`` the REST API uses: it asks this
node's rooms first; when none has the participant (or the conference), it sends
the same change to the node holding the participant's call (or, for the
conference itself, the call of one of its connected participants) through the
call forwarding of forward.py, whose node endpoint (api/cluster.py) applies it to
that node's own rooms.
"""

from __future__ import annotations

from typing import Any

from control_api.cluster.forward import ClusterLiveCalls

__all__ = ["ClusterConferences"]


class ClusterConferences:
    """``LiveConferences`` across nodes (control_api/api/conferences.py)."""

    def __init__(self, local, calls: ClusterLiveCalls, store) -> None:
        self.local = local  # this node's Conferences
        self.calls = calls
        self.store = store

    async def update_participant(
        self, account_sid: str, conference_sid: str, call_sid: str, **changes: Any
    ) -> bool:
        if await self.local.update_participant(account_sid, conference_sid, call_sid, **changes):
            return True
        body = {
            "action": "update_participant",
            "conference_sid": conference_sid,
            "changes": changes,
        }
        return await self.calls.forward_acted(account_sid, call_sid, body)

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        if await self.local.kick(account_sid, conference_sid, call_sid):
            return True
        body = {"action": "kick_participant", "conference_sid": conference_sid}
        return await self.calls.forward_acted(account_sid, call_sid, body)

    async def end(self, account_sid: str, conference_sid: str) -> bool:
        if await self.local.end(account_sid, conference_sid):
            return True
        body = {"action": "end_conference", "conference_sid": conference_sid}
        return await self._to_the_room(account_sid, conference_sid, body)

    async def announce(
        self, account_sid: str, conference_sid: str, url: str, method: str = "POST"
    ) -> bool:
        if await self.local.announce(account_sid, conference_sid, url, method):
            return True
        body = {
            "action": "announce_conference",
            "conference_sid": conference_sid,
            "url": url,
            "method": method,
        }
        return await self._to_the_room(account_sid, conference_sid, body)

    async def update_recording(
        self, account_sid: str, conference_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        """A conference recording's change: this node's rooms only (not forwarded)."""
        return await self.local.update_recording(
            account_sid, conference_sid, sid, status, pause_behavior
        )

    async def _to_the_room(self, account_sid: str, conference_sid: str, body: dict) -> bool:
        """Forward to the node of one of the room's connected participants."""
        rows = await self.store.participants.page(
            account_sid, conference_sid, status="connected", limit=1
        )
        return bool(rows) and await self.calls.forward_acted(account_sid, rows[0].call_sid, body)
