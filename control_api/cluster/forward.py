"""REST updates of a call held by another node, forwarded to that node.

The REST API acts on live calls through ``LiveCalls`` (control_api/voice/port.py).
``ClusterLiveCalls`` wraps this node's own: when this node does not hold the call and
the store says a live peer does (``calls.node_id``), it sends the same request to
that peer's node endpoint (``POST /cluster/Accounts/{AccountSid}/Calls/{CallSid}``,
JSON, Basic auth with the account's own credentials) and returns the peer's answer.
The peer's endpoint acts on its own calls only, so a request is forwarded once at most.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from control_api import http_client
from control_api.store import LIVE_STATUSES
from control_api.voice.port import (
    LiveCalls,
    NewCall,
    NewRecording,
    NewStream,
    NewTranscription,
    NewTwiml,
    StreamInfo,
    TranscriptionInfo,
    Unavailable,
)

if TYPE_CHECKING:
    from control_api.cluster.node import Node
    from control_api.store import CallRecord
    from control_api.voice.live import LiveCall

__all__ = [
    "FORWARD_PATH",
    "ClusterLiveCalls",
    "NodeUnreachable",
    "stream_from_wire",
    "stream_to_wire",
    "transcription_from_wire",
    "transcription_to_wire",
]

log = logging.getLogger("callswitch.cluster")

FORWARD_PATH = "/cluster/Accounts/{account_sid}/Calls/{call_sid}"
FORWARD_TIMEOUT_S = 10.0


class NodeUnreachable(Unavailable):
    """The node holding the call did not answer a forwarded update (the API: 503, 20503)."""

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(f"The node holding this call ({node_id}) did not answer")
        self.node_id = node_id
        self.reason = reason


class ClusterLiveCalls:
    """``LiveCalls`` across nodes: this node's calls directly, a live peer's by HTTP.

    ``draining()`` says when this node takes no new calls: ``create`` then answers 503
    (Twilio's 20503), so that a client or balancer places the call on another node.
    """

    def __init__(
        self,
        local: LiveCalls,
        store: Any,  # control_api.store.Store
        node: Node,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self.local = local
        self.store = store
        self.node = node
        self.draining = draining

    def live_of(self, account_sid: str) -> Sequence[LiveCall]:
        """The console's live view: this node's own calls."""
        return self.local.live_of(account_sid)

    async def create(self, account_sid: str, call: NewCall) -> CallRecord | None:
        if self.draining():
            raise Unavailable("This node is draining: place the call on another node")
        return await self.local.create(account_sid, call)

    async def add_participant(self, account_sid: str, conference: str, participant):
        """A participant is dialled in from this node (its room is this node's), not
        while it drains."""
        if self.draining():
            raise Unavailable("This node is draining: place the call on another node")
        return await self.local.add_participant(account_sid, conference, participant)

    async def hangup(self, account_sid: str, call_sid: str) -> bool:
        here = self.local.hangup(account_sid, call_sid)
        return await self._acted(here, account_sid, call_sid, {"action": "hangup"})

    async def cancel(self, account_sid: str, call_sid: str) -> bool:
        here = self.local.cancel(account_sid, call_sid)
        return await self._acted(here, account_sid, call_sid, {"action": "cancel"})

    async def redirect(self, account_sid: str, call_sid: str, to: NewTwiml) -> bool:
        here = self.local.redirect(account_sid, call_sid, to)
        body = {"action": "redirect", **asdict(to)}
        return await self._acted(here, account_sid, call_sid, body)

    async def start_stream(
        self, account_sid: str, call_sid: str, stream: NewStream
    ) -> StreamInfo | None:
        here = self.local.start_stream(account_sid, call_sid, stream)
        body = {"action": "start_stream", "stream": asdict(stream)}
        return await self._stream(here, account_sid, call_sid, body)

    async def stop_stream(
        self, account_sid: str, call_sid: str, sid_or_name: str
    ) -> StreamInfo | None:
        here = self.local.stop_stream(account_sid, call_sid, sid_or_name)
        body = {"action": "stop_stream", "stream": sid_or_name}
        return await self._stream(here, account_sid, call_sid, body)

    async def _acted(
        self, here: Awaitable[bool], account_sid: str, call_sid: str, body: dict
    ) -> bool:
        """Done on this node (``here``), or else by the live peer that holds the call."""
        if await here:
            return True
        answer = await self._forward(account_sid, call_sid, body)
        return bool(answer and answer.get("acted"))

    async def _stream(
        self, here: Awaitable[StreamInfo | None], account_sid: str, call_sid: str, body: dict
    ) -> StreamInfo | None:
        """The stream this node acted on (``here``), or else the one the holding peer did."""
        found = await here
        if found is not None:
            return found
        return stream_from_wire(await self._forward(account_sid, call_sid, body))

    async def start_transcription(
        self, account_sid: str, call_sid: str, transcription: NewTranscription
    ) -> TranscriptionInfo | None:
        here = self.local.start_transcription(account_sid, call_sid, transcription)
        body = {"action": "start_transcription", "transcription": asdict(transcription)}
        return await self._transcription(here, account_sid, call_sid, body)

    async def stop_transcription(
        self, account_sid: str, call_sid: str, sid_or_name: str
    ) -> TranscriptionInfo | None:
        here = self.local.stop_transcription(account_sid, call_sid, sid_or_name)
        body = {"action": "stop_transcription", "transcription": sid_or_name}
        return await self._transcription(here, account_sid, call_sid, body)

    async def _transcription(
        self,
        here: Awaitable[TranscriptionInfo | None],
        account_sid: str,
        call_sid: str,
        body: dict,
    ) -> TranscriptionInfo | None:
        """The live transcription this node acted on (``here``), or else the one the
        holding peer did."""
        found = await here
        if found is not None:
            return found
        return transcription_from_wire(await self._forward(account_sid, call_sid, body))

    async def start_recording(
        self, account_sid: str, call_sid: str, recording: NewRecording
    ) -> str | None:
        here = self.local.start_recording(account_sid, call_sid, recording)
        body = {"action": "start_recording", "recording": asdict(recording)}
        return await self._recording(here, account_sid, call_sid, body)

    async def update_recording(
        self, account_sid: str, call_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        here = self.local.update_recording(account_sid, call_sid, sid, status, pause_behavior)
        body = {
            "action": "update_recording",
            "recording": sid,
            "status": status,
            "pause_behavior": pause_behavior,
        }
        return await self._recording(here, account_sid, call_sid, body)

    async def _recording(
        self, here: Awaitable[str | None], account_sid: str, call_sid: str, body: dict
    ) -> str | None:
        """The recording (its sid) this node acted on (``here``), or else the one the
        holding peer did."""
        found = await here
        if found is not None:
            return found
        answer = await self._forward(account_sid, call_sid, body)
        return answer.get("recording") if answer else None

    async def forward_acted(self, account_sid: str, call_sid: str, body: dict) -> bool:
        """Send ``body`` to the node holding the call; whether it acted (False when no
        live peer holds it). Used for the conference changes of conferences.py."""
        answer = await self._forward(account_sid, call_sid, body)
        return bool(answer and answer.get("acted"))

    async def _forward(self, account_sid: str, call_sid: str, body: dict) -> dict | None:
        """The holding peer's answer, or None when no live peer holds the call."""
        call = await self.store.calls.get(account_sid, call_sid)
        if call is None or call.status not in LIVE_STATUSES or not call.node_id:
            return None
        peer = await self.node.live_peer(call.node_id)
        token = await self.store.accounts.auth_token(account_sid)
        if peer is None or token is None:
            return None
        basic = base64.b64encode(f"{account_sid}:{token}".encode()).decode()
        path = FORWARD_PATH.format(account_sid=account_sid, call_sid=call_sid)
        try:
            response = await http_client.request(
                "POST",
                peer.url + path,
                headers=[
                    ("Authorization", f"Basic {basic}"),
                    ("Content-Type", "application/json"),
                ],
                body=json.dumps(body).encode(),
                timeout=FORWARD_TIMEOUT_S,
            )
            answer = json.loads(response.body) if response.body else {}
        except (http_client.HttpError, ValueError) as exc:
            log.warning(
                "cluster.forward_failed",
                extra={"call_sid": call_sid, "node_id": peer.node_id, "error": str(exc)},
            )
            raise NodeUnreachable(peer.node_id, str(exc)) from None
        if response.status == 200:
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        if error == "name_taken":
            raise ValueError(answer.get("message", ""))
        if error in ("no_such_stream", "no_such_recording", "no_such_transcription"):
            raise LookupError(answer.get("message", ""))
        log.warning(
            "cluster.forward_refused",
            extra={"call_sid": call_sid, "node_id": peer.node_id, "status": response.status},
        )
        raise NodeUnreachable(peer.node_id, f"HTTP {response.status}")


def stream_from_wire(answer: dict | None) -> StreamInfo | None:
    """The stream in a peer's answer to a forwarded update, if any."""
    found = answer.get("stream") if answer else None
    if not found:
        return None
    return StreamInfo(
        sid=found["sid"],
        name=found["name"],
        status=found["status"],
        date_updated=datetime.fromisoformat(found["date_updated"]),
    )


def stream_to_wire(stream: StreamInfo | None) -> dict | None:
    """A stream as a forwarded update's answer carries it."""
    if stream is None:
        return None
    return {
        "sid": stream.sid,
        "name": stream.name,
        "status": stream.status,
        "date_updated": stream.date_updated.isoformat(),
    }


def transcription_from_wire(answer: dict | None) -> TranscriptionInfo | None:
    """The live transcription in a peer's answer to a forwarded update, if any."""
    found = answer.get("transcription") if answer else None
    if not found:
        return None
    return TranscriptionInfo(
        sid=found["sid"],
        name=found["name"],
        status=found["status"],
        date_updated=datetime.fromisoformat(found["date_updated"]),
    )


def transcription_to_wire(transcription: TranscriptionInfo | None) -> dict | None:
    """A live transcription as a forwarded update's answer carries it."""
    if transcription is None:
        return None
    return {
        "sid": transcription.sid,
        "name": transcription.name,
        "status": transcription.status,
        "date_updated": transcription.date_updated.isoformat(),
    }
