"""One socket of the official Twilio Voice JS SDK at ``/signal`` (signaling/pstream_endpoint.py).

A :class:`Session` reads the SDK's PStream frames (signaling/pstream.py) and acts on
the browser signaling server: its ``listen`` makes it a
:class:`~signaling.server.Tab`, its ``register`` lets it be rung, its calls are
:class:`~signaling.server.BrowserCall` objects. What the server and the calls say
to a tab (signaling/protocol.py messages) is translated back to PStream frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from signaling import protocol, pstream
from signaling.pstream import PStreamError
from signaling.server import (
    MAX_CALLS_PER_TAB,
    REGISTER_TIMEOUT_S,
    SEND_QUEUE,
    BrowserCall,
    DialRequest,
    Tab,
    WebSocketLike,
    close_quietly,
    is_disconnect,
    new_call_sid,
)
from signaling.tokens import AccessToken, TokenError
from signaling.webrtc_leg import SdpRejected, WebRtcLeg

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from signaling.pstream_endpoint import PStreamEndpoint

__all__ = ["API_VERSION", "Session"]

log = logging.getLogger("callswitch.webrtc")

API_VERSION = "2010-04-01"


class Session:
    """One SDK socket: its token, its Tab, its registration, the translation of messages."""

    def __init__(self, endpoint: PStreamEndpoint, websocket: WebSocketLike) -> None:
        self.endpoint = endpoint
        self.server = endpoint.server
        self.websocket = websocket
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(SEND_QUEUE)
        self.tab: Tab | None = None
        self.registered_at: float | None = None  # loop time of the last register audio:true
        self.reconnect_timeout = 0
        self.closed = False
        self.writer: asyncio.Future[None] | None = None

    # -- the socket

    async def run(self) -> None:
        await self.websocket.accept()
        self.writer = asyncio.ensure_future(self._write())
        closing: list[asyncio.Task[None]] = []
        self.writer.add_done_callback(
            lambda _: closing.append(asyncio.ensure_future(close_quietly(self.websocket)))
        )
        beat = asyncio.ensure_future(self._heartbeat())
        try:
            if await self._listen_first():
                while not self.writer.done():
                    await self._on_frame(await self.websocket.receive_text())
        except Exception as exc:  # the socket closed, or a bug: only this socket is affected
            if not is_disconnect(exc):
                log.exception("webrtc.sdk_socket_failed")
        finally:
            beat.cancel()
            self._closed()
            with contextlib.suppress(asyncio.QueueFull):
                self.outbox.put_nowait(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.writer, 1.0)
            with contextlib.suppress(Exception):
                await self.websocket.close()

    async def _write(self) -> None:
        while (text := await self.outbox.get()) is not None:
            await self.websocket.send_text(text)

    def put(self, text: str) -> None:
        if self.closed or self.writer is None:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:  # a socket that does not read is let go
            self.writer.cancel()

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.endpoint.heartbeat_s)
            self.put(pstream.HEARTBEAT)
            tab = self.tab
            if tab is None or self.registered_at is None:
                continue
            if tab.token.expires <= self.server.clock():
                self.put(pstream.error_frame(pstream.TOKEN_EXPIRED, "the access token expired"))
                self._unregister()
            elif loop.time() - self.registered_at > self.endpoint.register_ttl_s:
                self._unregister()

    async def _listen_first(self) -> bool:
        """The first frame must be ``listen`` with a good token; else ``error``, ``close``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REGISTER_TIMEOUT_S
        while True:
            try:
                text = await asyncio.wait_for(
                    self.websocket.receive_text(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                self._refuse(pstream.AUTHENTICATION_FAILED, "listen first")
                return False
            try:
                message = pstream.parse(text)
            except PStreamError as exc:
                self.put(pstream.error_frame(exc.code, exc.message))
                continue
            if message is None:
                continue
            if not isinstance(message, pstream.Listen):
                self.put(pstream.error_frame(pstream.AUTHENTICATION_FAILED, "listen first"))
                continue
            try:
                token = await self.server.check_token(message.token)
            except TokenError as exc:
                self._refuse(pstream.wire_code(exc.code), f"{exc} ({exc.code})")
                return False
            self.reconnect_timeout = message.reconnect_timeout
            self.tab = Tab(token, self._translate)
            self._connected(token)
            log.info(
                "webrtc.sdk_connected",
                extra={"account_sid": token.account_sid, "identity": token.identity},
            )
            return True

    def _refuse(self, code: int, message: str) -> None:
        """A fatal refusal: the SDK stops reconnecting on ``close``."""
        self.put(pstream.error_frame(code, message))
        self.put(pstream.frame("close"))

    def _connected(self, token: AccessToken) -> None:
        ttl = max(0, int(token.expires - self.server.clock()))
        self.put(pstream.frame("connected", token={"identity": token.identity, "ttl": ttl}))

    def _closed(self) -> None:
        """The socket is gone: stop ringing it; answered calls wait to be resumed."""
        tab = self.tab
        self.closed = True
        if tab is None:
            return
        self.server.remove_tab(tab)
        grace = max(float(self.reconnect_timeout), self.endpoint.resume_grace_s)
        loop = asyncio.get_running_loop()
        for call in list(tab.calls.values()):
            if call.accepted.done() and call.accepted.result():
                loop.call_later(grace, self._expire, call, tab)
            else:
                call.end("client-gone", notify=False)

    @staticmethod
    def _expire(call: BrowserCall, tab: Tab) -> None:
        if call.tab is tab:  # not resumed elsewhere
            call.end("client-gone", notify=False)

    # -- frames from the SDK

    async def _on_frame(self, text: str | bytes) -> None:
        try:
            message = pstream.parse(text)
            if message is not None:
                await self._dispatch(message)
        except PStreamError as exc:
            self.put(pstream.error_frame(exc.code, exc.message, exc.callsid))

    async def _dispatch(self, message: pstream.ClientMessage) -> None:
        tab = self.tab
        assert tab is not None  # after a good listen
        if isinstance(message, pstream.Listen):
            await self._update_token(tab, message)
        elif isinstance(message, pstream.Register):
            self._register(tab, message.audio)
        elif isinstance(message, pstream.Invite):
            if message.reconnect is not None:
                await self._resume(tab, message)
            else:
                await self._dial(tab, message)
        else:
            await self._on_call(tab, message)

    async def _update_token(self, tab: Tab, message: pstream.Listen) -> None:
        """A second ``listen``: a fresh token for the same identity; calls and the
        registration go on. A bad one gets an error and the old token stays."""
        try:
            token = await self.server.check_token(message.token)
        except TokenError as exc:
            raise PStreamError(pstream.wire_code(exc.code), f"{exc} ({exc.code})") from None
        if (token.account_sid, token.identity) != (tab.account_sid, tab.identity):
            raise PStreamError(pstream.TOKEN_INVALID, "a new token must name the same identity")
        tab.token = token
        self.reconnect_timeout = message.reconnect_timeout
        self._connected(token)

    def _register(self, tab: Tab, audio: bool) -> None:
        if audio:
            self.server.add_tab(tab)
            self.registered_at = asyncio.get_running_loop().time()
            self.put(pstream.frame("ready"))
        else:
            self._unregister()
            self.put(pstream.frame("offline"))

    def _unregister(self) -> None:
        if self.tab is not None:
            self.server.remove_tab(self.tab)
        self.registered_at = None

    async def _dial(self, tab: Tab, message: pstream.Invite) -> None:
        """A call the SDK places: the token's application runs, with its params."""
        tjs = message.callsid
        if tab.token.application_sid is None or self.server.on_dial is None:
            self._hangup_error(tjs, pstream.APPLICATION_NOT_FOUND, "no outgoing application")
            return
        if len(tab.calls) >= MAX_CALLS_PER_TAB:
            self._hangup_error(tjs, pstream.CALL_FAILED, "too many calls")
            return
        leg = WebRtcLeg(self.server.ice_servers, clock=self.server.media_clock)
        call = BrowserCall(tab, new_call_sid(), leg, "outgoing")
        state = self.endpoint.track(call, tjs)
        tab.calls[call.sid] = call
        try:
            sdp = await leg.answer_offer(message.sdp, prefer_pcmu=True)
        except SdpRejected as exc:
            call.end("failed", notify=False)
            self._hangup_error(tjs, pstream.CALL_FAILED, str(exc))
            return
        if call.ended.is_set():  # hung up (by its TJS id) meanwhile
            return
        call.accepted.set_result(True)
        self.put(pstream.frame("ringing", callsid=call.sid))
        self.put(pstream.frame("answer", callsid=call.sid, sdp=sdp, reconnect=state.token))
        params = dict(message.params)
        to = params.pop("To", "")
        self.server.place(DialRequest(tab, call, to, {**tab.token.params, **params}))

    def _hangup_error(self, callsid: str, code: int, text: str) -> None:
        self.put(pstream.frame("hangup", callsid=callsid, error={"code": code, "message": text}))

    async def _resume(self, tab: Tab, message: pstream.Invite) -> None:
        """``invite`` with a reconnect token: an answered call moves to this socket (same
        identity); a ringing one is answered here with the new offer (``connectToken``,
        same account)."""
        assert message.reconnect is not None
        state = self.endpoint.resumable(message.reconnect)
        call = state.call if state is not None else None
        if call is None or call.sid != message.callsid or call.ended.is_set():
            self._hangup_error(message.callsid, pstream.NOT_FOUND, "no such call to resume")
            return
        if not call.accepted.done() and call.direction == "incoming":
            if call.tab.account_sid != tab.account_sid:
                self._hangup_error(message.callsid, pstream.NOT_FOUND, "no such call to resume")
                return
            await self._pick_up(tab, call, message)
            return
        if (call.tab.account_sid, call.tab.identity) != (tab.account_sid, tab.identity):
            self._hangup_error(message.callsid, pstream.NOT_FOUND, "no such call to resume")
            return
        self._move(call, tab)
        self.put(pstream.frame("answer", callsid=call.sid, reconnect=message.reconnect))
        log.info("webrtc.sdk_call_resumed", extra={"call_sid": call.sid})

    @staticmethod
    def _move(call: BrowserCall, tab: Tab) -> None:
        if call.tab is not tab:
            call.tab.calls.pop(call.sid, None)
            call.tab = tab
            tab.calls[call.sid] = call

    async def _pick_up(self, tab: Tab, call: BrowserCall, message: pstream.Invite) -> None:
        """Answer a ringing call on this socket with a new leg for its fresh offer; the
        socket that was rung gets ``cancel``."""
        leg = WebRtcLeg(self.server.ice_servers, clock=self.server.media_clock)
        try:
            sdp = await leg.answer_offer(message.sdp, prefer_pcmu=True)
        except SdpRejected as exc:
            leg.close()
            self._hangup_error(call.sid, pstream.CALL_FAILED, str(exc))
            return
        if call.ended.is_set() or call.accepted.done():  # answered or gone meanwhile
            leg.close()
            self._hangup_error(call.sid, pstream.NOT_FOUND, "no such call to resume")
            return
        rung = call.tab
        old, call.leg = call.leg, leg
        old.on_close = lambda: None  # the offer we made to the rung socket is dropped
        old.close()
        leg.on_close = lambda: call.end("media-closed", notify=True)
        rung.send(protocol.Cancel(call.sid, "answered-elsewhere"))
        self._move(call, tab)
        call.accepted.set_result(True)
        self.put(pstream.frame("answer", callsid=call.sid, sdp=sdp, reconnect=message.reconnect))
        log.info("webrtc.sdk_call_picked_up", extra={"call_sid": call.sid})

    def _call(self, tab: Tab, callsid: str) -> BrowserCall:
        call = tab.calls.get(callsid)
        if call is None:  # the SDK's temporary id of a call it placed
            call = next(
                (c for c in tab.calls.values() if self.endpoint.state(c).tjs == callsid), None
            )
        if call is None:
            raise PStreamError(pstream.NOT_FOUND, "no such call", callsid=callsid)
        return call

    async def _on_call(self, tab: Tab, message: pstream.ClientMessage) -> None:
        assert not isinstance(message, pstream.Listen | pstream.Register | pstream.Invite)
        call = self._call(tab, message.callsid)
        if isinstance(message, pstream.Answer):
            await self._accept(call, message.sdp)
        elif isinstance(message, pstream.Reject):
            if call.accepted.done():
                raise PStreamError(pstream.MALFORMED, "not ringing", callsid=call.sid)
            call.end("rejected", notify=False)
        elif isinstance(message, pstream.Hangup):
            call.end("hangup", notify=False)
        elif isinstance(message, pstream.Dtmf):
            for digit in message.digits:
                if digit != "w":
                    call.leg.on_dtmf(digit)
        elif isinstance(message, pstream.Reinvite):
            self._hangup_error(call.sid, pstream.CONNECTION_FAILED, "ICE restart is not supported")
            call.end("ice-restart", notify=False)
        else:
            self.put(
                pstream.frame(
                    "ack", acktype="message", callsid=call.sid, voiceeventsid=message.voiceeventsid
                )
            )

    async def _accept(self, call: BrowserCall, sdp: str) -> None:
        if call.direction != "incoming" or call.accepted.done():
            raise PStreamError(pstream.MALFORMED, "not ringing", callsid=call.sid)
        try:
            await call.leg.accept_answer(sdp)
        except SdpRejected as exc:
            call.hangup("failed")
            raise PStreamError(pstream.CALL_FAILED, str(exc), callsid=call.sid) from None
        if not call.accepted.done():
            call.accepted.set_result(True)

    # -- what the server and calls say, as PStream frames

    def _translate(self, message: DataclassInstance) -> None:
        """Tab.send for this socket: a signaling.protocol message as PStream."""
        frame = self._frame_of(message)
        if frame is not None:
            self.put(frame)

    def _frame_of(self, message: Any) -> str | None:
        if isinstance(message, protocol.Incoming):
            return self._invite(message)
        if isinstance(message, protocol.Cancel):
            return pstream.frame("cancel", callsid=message.call)
        if isinstance(message, protocol.Hangup):
            return self._hangup(message.call)
        if isinstance(message, protocol.Status):
            self._status(message.call, message.status)
            return None
        if isinstance(message, protocol.Error):
            return pstream.error_frame(message.code, message.message, message.call)
        return None

    def _invite(self, message: protocol.Incoming) -> str | None:
        tab = self.tab
        call = tab.calls.get(message.call) if tab is not None else None
        if tab is None or call is None:
            return None
        state = self.endpoint.track(call)
        parameters = {
            "CallSid": call.sid,
            "AccountSid": tab.account_sid,
            "From": message.from_,
            "To": message.to,
            "ApiVersion": API_VERSION,
            "Params": pstream.encode_params(call.params),
        }
        return pstream.frame(
            "invite",
            callsid=call.sid,
            sdp=message.sdp,
            parameters=parameters,
            reconnect=state.token,
        )

    def _status(self, sid: str, status: str) -> None:
        tab = self.tab
        call = tab.calls.get(sid) if tab is not None else None
        if call is None or call.direction != "outgoing":
            return
        state = self.endpoint.state(call)
        if status == "in-progress":
            state.in_progress = True
        elif status == "failed" and not state.in_progress:
            state.failed = True  # its application could not be run

    def _hangup(self, sid: str) -> str:
        tab = self.tab
        call = tab.calls.get(sid) if tab is not None else None
        if call is not None and self.endpoint.state(call).failed:
            return pstream.frame(
                "hangup",
                callsid=sid,
                error={"code": pstream.APPLICATION_NOT_FOUND, "message": "application not found"},
            )
        return pstream.frame("hangup", callsid=sid)
