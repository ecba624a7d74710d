"""The browser signaling server: registrations, incoming and outgoing calls (docs/webrtc.md).

One WebSocket per browser tab. A tab registers with an access token
(signaling/tokens.py); the server then knows it as ``identity`` of an account
and may ring it. Each call of a tab is a :class:`BrowserCall` holding a
:class:`~signaling.webrtc_leg.WebRtcLeg`. The control plane sees only this
module's objects and callbacks: :meth:`SignalingServer.tabs` and
:meth:`SignalingServer.ring` for calls to a client, ``on_dial`` for calls a
client places. A tab can touch only its own calls: every call id it names is
looked up in its own table.

The WebSocket itself is anything with ``accept``, ``receive_text``,
``send_text`` and ``close`` coroutines (Starlette's, as the composition root
mounts it); a malformed message gets an ``error`` and the connection goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from media.clock import MediaClock
from signaling import protocol
from signaling.protocol import ProtocolError
from signaling.tokens import AccessToken, TokenError, issuer_of, verify
from signaling.webrtc_leg import IceServer, SdpRejected, WebRtcLeg

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# Queues one message (a signaling.protocol dataclass) for the tab.
Send = Callable[["DataclassInstance"], None]


class WebSocketLike(Protocol):
    """What the server needs of an accepted WebSocket (Starlette's, in the app)."""

    async def accept(self) -> None: ...

    async def receive_text(self) -> str | bytes: ...

    async def send_text(self, data: str, /) -> None: ...

    async def close(self) -> None: ...


__all__ = [
    "BrowserCall",
    "DialRequest",
    "SignalingServer",
    "Tab",
    "close_quietly",
    "is_disconnect",
]

log = logging.getLogger("callswitch.webrtc")

# key SID -> (account SID, secret) of an API key, or None: how a token's signature is checked.
KeyLookup = Callable[[str], Awaitable[tuple[str, str] | None]]
REGISTER_TIMEOUT_S = 10.0  # a connection that does not register by then is closed
MAX_CALLS_PER_TAB = 8
SEND_QUEUE = 256  # messages waiting for a slow tab; past that it is disconnected


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


@dataclass(eq=False)
class Tab:
    """One registered browser tab (one WebSocket)."""

    token: AccessToken
    send: Send
    calls: dict[str, BrowserCall] = field(default_factory=dict)

    @property
    def account_sid(self) -> str:
        return self.token.account_sid

    @property
    def identity(self) -> str:
        return self.token.identity


class BrowserCall:
    """One call of one tab: its leg, its state, and how it ends."""

    def __init__(self, tab: Tab, sid: str, leg: WebRtcLeg, direction: str) -> None:
        self.tab = tab
        self.sid = sid
        self.leg = leg
        self.direction = direction  # "incoming" (we rang the tab) or "outgoing"
        self.accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.on_ended: list[Callable[[BrowserCall], None]] = []
        self.on_mute: Callable[[bool], None] = lambda muted: None
        self.params: dict[str, str] = {}  # custom parameters (<Client><Parameter>) for the tab
        leg.on_close = lambda: self.end("media-closed", notify=True)

    def status(self, status: str) -> None:
        """Tell the tab how the call goes (ringing, in-progress, completed…)."""
        if not self.ended.is_set():
            self.tab.send(protocol.Status(self.sid, status))

    def cancel(self, reason: str = "canceled") -> None:
        """Stop ringing this tab (the caller hung up, or another tab answered)."""
        if not self.accepted.done():
            self.accepted.set_result(False)
        self.end(reason, notify=True, message=protocol.Cancel(self.sid, reason))

    def hangup(self, reason: str = "completed") -> None:
        self.end(reason, notify=True)

    def end(self, reason: str, *, notify: bool, message: DataclassInstance | None = None) -> None:
        """End the call once: ``notify`` tells the tab (``message``, else a Hangup)."""
        if self.ended.is_set():
            return
        self.end_reason = reason
        if not self.accepted.done():
            self.accepted.set_result(False)
        if notify:
            self.tab.send(message or protocol.Hangup(self.sid, reason))
        self.tab.calls.pop(self.sid, None)
        self.ended.set()
        self.leg.close()
        leg = self.leg
        log.info(
            "webrtc.call_ended",
            extra={
                "call_sid": self.sid,
                "reason": reason,
                "codec": leg.browser_codec,
                "frames_received": leg.frames_received,
                "frames_dropped": leg.frames_dropped,
                "frames_sent": leg.frames_sent,
            },
        )
        for callback in self.on_ended:
            callback(self)


@dataclass(frozen=True, slots=True)
class DialRequest:
    """A call a tab places: the control plane runs it (the token's application)."""

    tab: Tab
    call: BrowserCall
    to: str
    params: dict[str, str]


class SignalingServer:
    """Every connected tab, by account and identity; ringing them; their calls."""

    def __init__(
        self,
        lookup_key: KeyLookup,
        *,
        ice_servers: list[IceServer] | None = None,
        browser_ice_servers: Callable[[str], list[IceServer]] | None = None,
        clock: Callable[[], float] = time.time,
        media_clock: MediaClock | None = None,
    ) -> None:
        self.lookup_key = lookup_key
        self.media_clock = media_clock  # paces what legs send to browsers
        self.ice_servers = list(ice_servers or [])  # our legs' own
        # What a tab of an account is told to use besides: the node's TURN relay with
        # fresh credentials, say (a browser is the side behind a NAT).
        self.browser_ice_servers = browser_ice_servers
        self.clock = clock
        self._tabs: dict[tuple[str, str], list[Tab]] = {}
        # Set by the control plane: run a call a tab placed. Unset, calls are refused.
        self.on_dial: Callable[[DialRequest], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- for the control plane

    def tabs(self, account_sid: str, identity: str) -> list[Tab]:
        """The tabs of ``identity`` in ``account_sid`` that may be called."""
        return [
            tab
            for tab in self._tabs.get((account_sid, identity), [])
            if tab.token.incoming_allow and tab.token.expires > self.clock()
        ]

    async def ring(
        self,
        tab: Tab,
        *,
        from_: str,
        to: str,
        prefer_pcmu: bool = True,
        sid: str | None = None,
        params: dict[str, str] | None = None,
    ) -> BrowserCall:
        """Offer a call to ``tab``; ``await call.accepted`` says whether it was taken."""
        leg = WebRtcLeg(self.ice_servers, clock=self.media_clock)
        call = BrowserCall(tab, sid or new_call_sid(), leg, "incoming")
        call.params = dict(params or {})
        tab.calls[call.sid] = call
        try:
            sdp = await leg.create_offer(prefer_pcmu)
        except Exception:
            call.hangup("failed")
            raise
        if not call.ended.is_set():
            tab.send(protocol.Incoming(call.sid, sdp, from_=from_, to=to))
        return call

    # -- the WebSocket

    async def handle(self, websocket: WebSocketLike) -> None:
        """Serve one tab until it goes away."""
        await websocket.accept()
        outbox: asyncio.Queue[str | None] = asyncio.Queue(SEND_QUEUE)
        writer = asyncio.ensure_future(self._write(websocket, outbox))
        # A writer that stopped (a tab too slow to read, a broken socket) closes the
        # socket, which ends the read below even if the tab sends nothing more.
        closing: list[asyncio.Task[None]] = []
        writer.add_done_callback(
            lambda _: closing.append(asyncio.ensure_future(close_quietly(websocket)))
        )
        tab: Tab | None = None

        def send(message: DataclassInstance) -> None:
            try:
                outbox.put_nowait(protocol.serialize(message))
            except asyncio.QueueFull:  # a tab that does not read is let go
                writer.cancel()

        try:
            tab = await self._register(websocket, send)
            if tab is None:
                return
            while not writer.done():
                text = await websocket.receive_text()
                await self._on_message(tab, text, send)
        except Exception as exc:  # the socket closed, or a bug: only this tab is affected
            if not is_disconnect(exc):
                log.exception("webrtc.tab_failed")
        finally:
            if tab is not None:
                self._unregister(tab)
            with contextlib.suppress(asyncio.QueueFull):
                outbox.put_nowait(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer, 1.0)
            with contextlib.suppress(Exception):
                await websocket.close()

    async def _write(self, websocket: WebSocketLike, outbox: asyncio.Queue[str | None]) -> None:
        while (text := await outbox.get()) is not None:
            await websocket.send_text(text)

    async def _register(self, websocket: WebSocketLike, send: Send) -> Tab | None:
        """The first message must be ``register`` with a good token; else an error and close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REGISTER_TIMEOUT_S  # for all attempts together
        while True:
            try:
                text = await asyncio.wait_for(
                    websocket.receive_text(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                send(protocol.Error(protocol.NOT_REGISTERED, "register first"))
                return None
            try:
                message = protocol.parse(text)
            except ProtocolError as exc:
                send(protocol.Error(exc.code, exc.message))
                continue
            if not isinstance(message, protocol.Register):
                send(protocol.Error(protocol.NOT_REGISTERED, "register first"))
                continue
            try:
                token = await self.check_token(message.token)
            except TokenError as exc:
                send(protocol.Error(exc.code, str(exc)))
                return None
            tab = Tab(token, send)
            self._tabs.setdefault((token.account_sid, token.identity), []).append(tab)
            send(self._registered(token))
            log.info(
                "webrtc.registered",
                extra={"account_sid": token.account_sid, "identity": token.identity},
            )
            return tab

    async def check_token(self, text: str) -> AccessToken:
        """The token's claims, checked against its key's secret; raises TokenError."""
        from signaling.tokens import InvalidIssuer

        key_sid, _ = issuer_of(text)
        found = await self.lookup_key(key_sid)
        if found is None:
            raise InvalidIssuer("no such API key")
        account_sid, secret = found
        return verify(text, secret=secret, account_sid=account_sid, now=self.clock())

    def add_tab(self, tab: Tab) -> None:
        """Let ``tab`` be rung (another protocol's socket: the official SDK's /signal)."""
        tabs = self._tabs.setdefault((tab.account_sid, tab.identity), [])
        if tab not in tabs:
            tabs.append(tab)

    def remove_tab(self, tab: Tab) -> None:
        """Stop ringing ``tab``; its calls go on."""
        key = (tab.account_sid, tab.identity)
        tabs = self._tabs.get(key, [])
        if tab in tabs:
            tabs.remove(tab)
        if not tabs:
            self._tabs.pop(key, None)

    def _unregister(self, tab: Tab) -> None:
        self.remove_tab(tab)
        for call in list(tab.calls.values()):
            call.end("client-gone", notify=False)

    async def _on_message(self, tab: Tab, text: str | bytes, send: Send) -> None:
        try:
            message = protocol.parse(text)
            await self._dispatch(tab, message)
        except ProtocolError as exc:
            send(protocol.Error(exc.code, exc.message, call=exc.call))

    async def _dispatch(self, tab: Tab, message: protocol.ClientMessage) -> None:
        if isinstance(message, protocol.Register):
            await self._refresh(tab, message.token)
            return
        if isinstance(message, protocol.Dial):
            await self._dial(tab, message)
            return
        call = tab.calls.get(message.call)
        if call is None:
            raise ProtocolError(protocol.NO_SUCH_CALL, "no such call", call=message.call)
        if isinstance(message, protocol.Accept):
            if call.direction != "incoming" or call.accepted.done():
                raise ProtocolError(protocol.MALFORMED, "not ringing", call=call.sid)
            try:
                await call.leg.accept_answer(message.sdp)
            except SdpRejected as exc:
                call.hangup("failed")
                raise ProtocolError(protocol.CALL_FAILED, str(exc), call=call.sid) from None
            if not call.accepted.done():
                call.accepted.set_result(True)
        elif isinstance(message, protocol.Reject):
            if call.accepted.done():
                raise ProtocolError(protocol.MALFORMED, "not ringing", call=call.sid)
            call.end("rejected", notify=False)
        elif isinstance(message, protocol.Candidate):
            try:
                await call.leg.add_candidate(
                    message.candidate, message.sdpMid, message.sdpMLineIndex
                )
            except SdpRejected as exc:
                raise ProtocolError(protocol.MALFORMED, str(exc), call=call.sid) from None
        elif isinstance(message, protocol.Dtmf):
            for digit in message.digits:
                if digit != "w":
                    call.leg.on_dtmf(digit)
        elif isinstance(message, protocol.Mute):
            call.leg.muted = message.muted
            call.on_mute(message.muted)
        elif isinstance(message, protocol.Hangup):
            call.end("hangup", notify=False)

    async def _refresh(self, tab: Tab, text: str) -> None:
        """``register`` again with a fresh token (before the old one expires): same
        account and identity only; the tab keeps its calls."""
        try:
            token = await self.check_token(text)
        except TokenError as exc:
            raise ProtocolError(exc.code, str(exc)) from None
        if (token.account_sid, token.identity) != (tab.account_sid, tab.identity):
            raise ProtocolError(protocol.MALFORMED, "a new token must name the same identity")
        tab.token = token
        tab.send(self._registered(token))

    def _registered(self, token: AccessToken) -> protocol.Registered:
        return protocol.Registered(
            identity=token.identity,
            account_sid=token.account_sid,
            expires=token.expires,
            incoming=token.incoming_allow,
            outgoing=token.application_sid is not None,
            ice_servers=[server.as_json() for server in self._browser_ice(token.account_sid)],
        )

    def _browser_ice(self, account_sid: str) -> list[IceServer]:
        extra = self.browser_ice_servers(account_sid) if self.browser_ice_servers else []
        return [*self.ice_servers, *extra]

    async def _dial(self, tab: Tab, message: protocol.Dial) -> None:
        if tab.token.application_sid is None or self.on_dial is None:
            raise ProtocolError(protocol.INCOMING_NOT_ALLOWED, "the token grants no outgoing calls")
        if len(tab.calls) >= MAX_CALLS_PER_TAB:
            raise ProtocolError(protocol.CALL_FAILED, "too many calls")
        leg = WebRtcLeg(self.ice_servers, clock=self.media_clock)
        call = BrowserCall(tab, new_call_sid(), leg, "outgoing")
        try:
            sdp = await leg.answer_offer(message.sdp, prefer_pcmu=True)
        except SdpRejected as exc:
            call.end("failed", notify=False)
            raise ProtocolError(protocol.CALL_FAILED, str(exc)) from None
        tab.calls[call.sid] = call
        call.accepted.set_result(True)
        tab.send(protocol.Answer(message.ref, call.sid, sdp))
        params = {**tab.token.params, **message.params}
        self.place(DialRequest(tab, call, message.to, params))

    def place(self, request: DialRequest) -> None:
        """Run a call a tab placed (``on_dial``) in the background; hang it up after."""
        task = asyncio.ensure_future(self._run_dial(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_dial(self, request: DialRequest) -> None:
        try:
            if self.on_dial is None:  # (checked before the call was made)
                return
            await self.on_dial(request)
        except Exception:
            log.exception("webrtc.dial_failed", extra={"call_sid": request.call.sid})
        finally:
            request.call.hangup("completed")

    def counts(self) -> tuple[int, int]:
        """(tabs registered, their calls in progress), for metrics."""
        tabs = [tab for group in self._tabs.values() for tab in group]
        return len(tabs), sum(len(tab.calls) for tab in tabs)

    def close(self) -> None:
        for tabs in list(self._tabs.values()):
            for tab in list(tabs):
                for call in list(tab.calls.values()):
                    call.hangup("shutdown")


async def close_quietly(websocket: WebSocketLike) -> None:
    with contextlib.suppress(Exception):
        await websocket.close()


def is_disconnect(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in {"WebSocketDisconnect", "ConnectionClosed", "ConnectionClosedOK"} or isinstance(
        exc, ConnectionError | RuntimeError
    )
