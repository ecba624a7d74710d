"""The official Twilio Voice JS SDK's endpoint (``/signal``) on the browser signaling server.

A socket is a :class:`~signaling.server.Tab` of the :class:`SignalingServer`
once its ``listen`` carries a good token, and may be rung once it sends
``register`` (media.audio true): ``<Dial><Client>``, ``To=client:`` and the
calls a tab places run exactly as for callswitch.js tabs. Each socket is a
:class:`~signaling.pstream_session.Session`; this module keeps what outlives one:
the reconnect token of every call an SDK socket has.

Policies (docs/webrtc.md):

- Heartbeat ``"\\n"`` every :data:`HEARTBEAT_S`; the SDK reconnects after 15 s
  without a frame. A registration not renewed for :data:`REGISTER_TTL_S`
  (the SDK renews every 30 s) stops ringing.
- Reconnection: an answered call outlives its socket for the ``reconnectTimeout``
  the SDK asked for, never less than :data:`RESUME_GRACE_S`; an ``invite`` on
  a new socket naming its CallSid and reconnect token moves it there. A call
  still ringing ends with its socket, or is answered by another socket of the
  account that names it so with a fresh offer (``connectToken``).
- ``reinvite`` (ICE restart) is declined: aiortc cannot restart ICE, so the
  call is hung up at once with error 31003, and billed to that moment.
- ``message`` is acknowledged (``ack``); its content is delivered nowhere
  (callswitch has no UserDefinedMessageSubscriptions).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from signaling.pstream_session import Session
from signaling.server import BrowserCall, SignalingServer, WebSocketLike

__all__ = ["HEARTBEAT_S", "REGISTER_TTL_S", "RESUME_GRACE_S", "PStreamEndpoint", "ResumableCall"]

HEARTBEAT_S = 5.0
REGISTER_TTL_S = 90.0
RESUME_GRACE_S = 10.0


@dataclass(eq=False)
class ResumableCall:
    """What lets a call move to another socket: its token and how it stood."""

    call: BrowserCall
    token: str
    tjs: str | None = None  # the SDK's temporary id of a call it placed
    in_progress: bool = False
    failed: bool = False  # its application could not be run (error 31001 on hangup)


class PStreamEndpoint:
    """Serves ``/signal``: a :class:`~signaling.pstream_session.Session` per socket, and
    the calls that outlive their socket."""

    def __init__(
        self,
        server: SignalingServer,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        resume_grace_s: float = RESUME_GRACE_S,
        register_ttl_s: float = REGISTER_TTL_S,
    ) -> None:
        self.server = server
        self.heartbeat_s = heartbeat_s
        self.resume_grace_s = resume_grace_s
        self.register_ttl_s = register_ttl_s
        self._by_token: dict[str, ResumableCall] = {}
        self._by_sid: dict[str, ResumableCall] = {}

    async def handle(self, websocket: WebSocketLike) -> None:
        """Serve one SDK socket until it goes away."""
        await Session(self, websocket).run()

    def track(self, call: BrowserCall, tjs: str | None = None) -> ResumableCall:
        """Give ``call`` a reconnect token (forgotten when the call ends)."""
        known = self._by_sid.get(call.sid)
        if known is not None:
            return known
        state = ResumableCall(call, secrets.token_urlsafe(24), tjs)
        self._by_token[state.token] = state
        self._by_sid[call.sid] = state
        call.on_ended.append(self._forget)
        return state

    def state(self, call: BrowserCall) -> ResumableCall:
        return self.track(call)

    def counts(self) -> int:
        """Calls of SDK sockets in progress (resumable ones included)."""
        return len(self._by_sid)

    async def close(self) -> None:
        """Hang up every call of an SDK socket (shutdown)."""
        for state in list(self._by_sid.values()):
            state.call.hangup("shutdown")

    def resumable(self, token: str) -> ResumableCall | None:
        return self._by_token.get(token)

    def _forget(self, call: BrowserCall) -> None:
        state = self._by_sid.pop(call.sid, None)
        if state is not None:
            self._by_token.pop(state.token, None)
