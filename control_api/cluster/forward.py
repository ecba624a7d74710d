"""REST updates of a call held by another node, forwarded to that node.

The REST API acts on live calls through ``LiveCalls`` (control_api/api/calls.py).
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
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from control_api import http_client
from control_api.api.auth import PathAccount
from control_api.errors import SERVICE_UNAVAILABLE, ApiError
from control_api.store.nodes import LIVE_STATUSES
from control_api.voice.port import NewStream, StreamInfo

__all__ = ["FORWARD_PATH", "ClusterLiveCalls", "NodeUnreachable", "cluster_router"]

log = logging.getLogger("callswitch.cluster")

FORWARD_PATH = "/cluster/Accounts/{account_sid}/Calls/{call_sid}"
FORWARD_TIMEOUT_S = 10.0


class NodeUnreachable(ApiError):
    """The node holding the call did not answer a forwarded update (503, 20503)."""

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(
            503, SERVICE_UNAVAILABLE, f"The node holding this call ({node_id}) did not answer"
        )
        self.reason = reason


class ClusterLiveCalls:
    """``LiveCalls`` across nodes: this node's calls directly, a live peer's by HTTP.

    ``draining()`` says when this node takes no new calls: ``create`` then answers 503
    (Twilio's 20503), so that a client or balancer places the call on another node.
    """

    def __init__(self, local, store, node, draining: Callable[[], bool] = lambda: False) -> None:
        self.local = local
        self.store = store
        self.node = node  # control_api.cluster.node.Node
        self.draining = draining

    def __getattr__(self, name: str) -> Any:
        # What else the API reads of the engine (the console's live_of): this node's own.
        return getattr(self.local, name)

    async def create(self, account_sid: str, call):
        if self.draining():
            raise ApiError(
                503, SERVICE_UNAVAILABLE, "This node is draining: place the call on another node"
            )
        return await self.local.create(account_sid, call)

    async def hangup(self, account_sid: str, call_sid: str) -> bool:
        if await self.local.hangup(account_sid, call_sid):
            return True
        answer = await self._forward(account_sid, call_sid, {"action": "hangup"})
        return bool(answer and answer.get("acted"))

    async def cancel(self, account_sid: str, call_sid: str) -> bool:
        if await self.local.cancel(account_sid, call_sid):
            return True
        answer = await self._forward(account_sid, call_sid, {"action": "cancel"})
        return bool(answer and answer.get("acted"))

    async def redirect(
        self,
        account_sid: str,
        call_sid: str,
        *,
        url: str | None = None,
        method: str = "POST",
        twiml: str | None = None,
    ) -> bool:
        if await self.local.redirect(account_sid, call_sid, url=url, method=method, twiml=twiml):
            return True
        body = {"action": "redirect", "url": url, "method": method, "twiml": twiml}
        answer = await self._forward(account_sid, call_sid, body)
        return bool(answer and answer.get("acted"))

    async def start_stream(self, account_sid: str, call_sid: str, stream: NewStream):
        found = await self.local.start_stream(account_sid, call_sid, stream)
        if found is not None:
            return found
        body = {"action": "start_stream", "stream": asdict(stream)}
        return _stream_of(await self._forward(account_sid, call_sid, body))

    async def stop_stream(self, account_sid: str, call_sid: str, sid_or_name: str):
        found = await self.local.stop_stream(account_sid, call_sid, sid_or_name)
        if found is not None:
            return found
        body = {"action": "stop_stream", "stream": sid_or_name}
        return _stream_of(await self._forward(account_sid, call_sid, body))

    async def _forward(self, account_sid: str, call_sid: str, body: dict) -> dict | None:
        """The holding peer's answer, or None when no live peer holds the call."""
        call = await self.store.get_call(account_sid, call_sid)
        if call is None or call.status not in LIVE_STATUSES or not call.node_id:
            return None
        peer = await self.node.live_peer(call.node_id)
        token = await self.store.auth_token(account_sid)
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
        if error == "no_such_stream":
            raise LookupError(answer.get("message", ""))
        log.warning(
            "cluster.forward_refused",
            extra={"call_sid": call_sid, "node_id": peer.node_id, "status": response.status},
        )
        raise NodeUnreachable(peer.node_id, f"HTTP {response.status}")


def _stream_of(answer: dict | None) -> StreamInfo | None:
    found = answer.get("stream") if answer else None
    if not found:
        return None
    return StreamInfo(
        sid=found["sid"],
        name=found["name"],
        status=found["status"],
        date_updated=datetime.fromisoformat(found["date_updated"]),
    )


def _stream_json(stream: StreamInfo | None) -> dict | None:
    if stream is None:
        return None
    return {
        "sid": stream.sid,
        "name": stream.name,
        "status": stream.status,
        "date_updated": stream.date_updated.isoformat(),
    }


def cluster_router(local) -> APIRouter:
    """The node endpoint peers forward to; it acts on ``local`` (this node's own calls)."""
    router = APIRouter()

    @router.post(FORWARD_PATH)
    async def forwarded(request: Request, call_sid: str, account: PathAccount) -> JSONResponse:
        try:
            body = await request.json()
            action = body["action"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "bad_request"}, 400)
        sid = account.sid
        if action == "hangup":
            return JSONResponse({"acted": await local.hangup(sid, call_sid)})
        if action == "cancel":
            return JSONResponse({"acted": await local.cancel(sid, call_sid)})
        if action == "redirect":
            acted = await local.redirect(
                sid,
                call_sid,
                url=body.get("url"),
                method=body.get("method") or "POST",
                twiml=body.get("twiml"),
            )
            return JSONResponse({"acted": acted})
        if action == "start_stream":
            try:
                fields = dict(body["stream"])
                fields["parameters"] = tuple(tuple(p) for p in fields.get("parameters", ()))
                stream = NewStream(**fields)
            except (KeyError, TypeError, ValueError):
                return JSONResponse({"error": "bad_request"}, 400)
            try:
                found = await local.start_stream(sid, call_sid, stream)
            except ValueError as exc:
                return JSONResponse({"error": "name_taken", "message": str(exc)}, 409)
            return JSONResponse({"stream": _stream_json(found)})
        if action == "stop_stream":
            try:
                found = await local.stop_stream(sid, call_sid, str(body["stream"]))
            except LookupError as exc:
                return JSONResponse({"error": "no_such_stream", "message": str(exc)}, 404)
            return JSONResponse({"stream": _stream_json(found)})
        return JSONResponse({"error": "bad_request"}, 400)

    return router
