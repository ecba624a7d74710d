"""Calls: what the control plane sees of a SIP INVITE session and its media leg."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from media.clock import MediaClock
from media.ports import PortPool, PortsExhausted
from media.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    negotiate_answer,
    remote_rtp_address,
)
from media.session import RtpSession
from sip.invite import EndReason, InviteSession
from sip.ua import UserAgent

__all__ = ["Call", "CallManager", "MediaSettings", "new_call_sid"]

log = logging.getLogger("callswitch.calls")

SUPPORTED_CODECS = [PCMU, PCMA, TELEPHONE_EVENT]

App = Callable[["Call"], Awaitable[None]]


def new_call_sid() -> str:
    """A Twilio-shaped Call SID: CA and 32 hex digits."""
    return "CA" + secrets.token_hex(16)


@dataclass(slots=True)
class MediaSettings:
    bind: str
    public_address: str
    pool: PortPool
    clock: MediaClock


class Call:
    """One inbound call: a SIP session, its RTP leg and the app that runs it."""

    def __init__(self, session: InviteSession) -> None:
        self.sid = new_call_sid()
        self.session = session
        self.leg: RtpSession | None = None
        self.ended = asyncio.Event()
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.end_reason: EndReason | None = None
        session.on_terminated = self._terminated

    @property
    def call_id(self) -> str:
        return self.session.call_id

    def log(self, event: str, **fields) -> None:
        log.info(event, extra={"call_id": self.call_id, "call_sid": self.sid, **fields})

    def hangup(self) -> None:
        self.session.hangup()

    def reject(self, status: int) -> None:
        self.session.reject(status)

    def _terminated(self, reason: EndReason) -> None:
        self.end_reason = reason
        if self.leg is not None:
            self.leg.close()
        self.ended.set()
        duration = time.time() - self.answer_time if self.answer_time else 0.0
        self.log("call.ended", reason=reason.value, duration=round(duration, 3))


class CallManager:
    """Routes each incoming INVITE to an application by the Request-URI user."""

    def __init__(
        self, ua: UserAgent, media: MediaSettings, apps: dict[str, tuple[App, bool]]
    ) -> None:
        self.ua = ua
        self.media = media
        self.apps = apps
        self.calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task] = set()
        ua.on_invite = self.on_invite

    def on_invite(self, session: InviteSession) -> None:
        entry = self.apps.get(session.user)
        if entry is None:
            session.reject(404)
            return
        task = asyncio.get_running_loop().create_task(self._run(session, *entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, session: InviteSession, app: App, answers: bool) -> None:
        call = Call(session)
        self.calls[call.sid] = call
        try:
            if answers:
                if not await self._answer(call):
                    return
            else:
                session.ring()
            await app(call)
        except Exception:
            log.exception("call.app_failed", extra={"call_id": call.call_id})
            session.hangup()
        finally:
            self.calls.pop(call.sid, None)
            if call.leg is not None and not call.leg.closed:
                call.leg.close()

    async def _answer(self, call: Call) -> bool:
        """Offer/answer and an RTP leg; False when the call was refused or went away."""
        session, media = call.session, self.media
        if session.offer is None:
            # Offer-less INVITEs (we would offer in the 200) are not supported yet.
            session.reject(488, "SDP Offer Required")
            return False
        try:
            offer = SessionDescription.parse(session.offer)
        except SdpParseError as exc:
            session.reject(400, f"Bad SDP: {exc}"[:80])
            return False
        try:
            leg = await RtpSession.bind(media.bind, media.pool, media.clock)
        except PortsExhausted:
            session.reject(503)
            return False
        call.leg = leg
        if call.ended.is_set():  # cancelled while we were binding
            return False
        try:
            answer, codec, dtmf = negotiate_answer(
                offer, SUPPORTED_CODECS, media.public_address, leg.port, leg.ssrc
            )
        except SdpNegotiationError:
            session.reject(488)
            return False
        audio = next(m for m in offer.media if m.media == "audio" and m.port)
        leg.configure(codec, remote_rtp_address(offer, audio), dtmf=dtmf, ptime=audio.ptime or 20)
        session.ring()
        session.answer(answer.serialize())
        call.answer_time = time.time()
        leg.start()
        call.log("call.answered", codec=codec.name)
        return True
