"""Calls: what the control plane sees of a SIP INVITE session and its media leg."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from control_api.calls.media_update import MediaUpdater, attach_media_updates
from control_api.calls.webrtc_sip import (
    WebRtcLegs,
    attach_midcall_offers,
    end_with_leg,
    is_webrtc_offer,
)
from media.clock import MediaClock
from media.ports import PortPool, PortsExhausted
from media.sdp import (
    G722,
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    remote_rtp_address,
)
from media.session import RtpSession
from media.srtp import SdesAnswerer
from media.watchdog import SilenceWatchdog
from signaling.webrtc_leg import SdpRejected, WebRtcLeg
from sip.invite import EndReason, InviteSession
from sip.ua import UserAgent

__all__ = ["Call", "CallManager", "CallTimes", "MediaSettings", "new_call_sid"]

log = logging.getLogger("callswitch.calls")

# G.711 first: a PCMU trunk bridged to a PCMU phone is relayed untouched. The
# offerer's order decides among these (RFC 3264 §6.1).
VOICE_CODECS = [PCMU, PCMA, G722, OPUS]
SUPPORTED_CODECS = [*VOICE_CODECS, TELEPHONE_EVENT]

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
    # Hangs up answered calls whose peer sends no RTP/RTCP (--rtp-timeout); None: never.
    watchdog: SilenceWatchdog | None = None
    # WebRTC legs for dialogs of browser phones (SIP over WebSocket); None: RTP only.
    webrtc: WebRtcLegs | None = None


class CallTimes:
    """What every kind of call reports the same way: answered, duration, log lines."""

    sid: str
    answer_time: float | None
    end_time: float | None

    @property
    def call_id(self) -> str:  # pragma: no cover - each kind has its own
        raise NotImplementedError

    @property
    def answered(self) -> bool:
        return self.answer_time is not None

    @property
    def duration(self) -> float:
        """Seconds from answer to hang-up (0 for a call never answered)."""
        if self.answer_time is None:
            return 0.0
        return (self.end_time or time.time()) - self.answer_time

    def hangup(self) -> None:  # pragma: no cover - each kind has its own
        raise NotImplementedError

    def log(self, event: str, **fields) -> None:
        log.info(event, extra={"call_id": self.call_id, "call_sid": self.sid, **fields})

    rtp_timed_out = False  # hung up because the peer sent no media (--rtp-timeout)

    def _watch_media(self, media: MediaSettings, leg: RtpSession, source_ip: str) -> None:
        """Hang up with BYE once the peer has sent no RTP or RTCP for --rtp-timeout
        (--rtp-hold-timeout on hold)."""
        if media.watchdog is None:
            return

        def silent(seconds: float, held: bool) -> None:
            if self.end_time is not None:
                return
            self.rtp_timed_out = True
            self.log(
                "call.rtp_timeout",
                source_ip=source_ip,
                seconds=round(seconds, 1),
                held=held,
                port=leg.port,
            )
            self.hangup()

        media.watchdog.watch(leg, silent)


class Call(CallTimes):
    """One inbound call: a SIP session, its RTP leg once answered, and its lifecycle.

    Applications answer when they are ready (``await call.answer()``), so a TwiML
    ``<Reject>`` can refuse a call that was never picked up.
    """

    def __init__(self, session: InviteSession, media: MediaSettings) -> None:
        self.sid = new_call_sid()
        self.session = session
        self.media = media
        self.leg: RtpSession | WebRtcLeg | None = None
        self.media_updater: MediaUpdater | None = None  # once answered: its re-INVITEs
        self.ended = asyncio.Event()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.end_reason: EndReason | None = None
        self.reject_status: int | None = None
        self.on_answered: list[Callable[[Call], None]] = []
        self.on_ended: list[Callable[[Call], None]] = []  # once, after `ended` is set
        self._answering: asyncio.Future[bool] | None = None
        session.on_terminated = self._terminated

    @property
    def call_id(self) -> str:
        return self.session.call_id

    def ring(self) -> None:
        self.session.ring()

    async def answer(self) -> bool:
        """Offer/answer and an RTP leg; False when the call was refused or went away."""
        if self._answering is None:
            self._answering = asyncio.ensure_future(self._answer())
        return await asyncio.shield(self._answering)

    async def _answer(self) -> bool:
        session, media = self.session, self.media
        if self.ended.is_set():
            return False
        offer = None
        if session.offer is not None:
            try:
                offer = SessionDescription.parse(session.offer)
            except SdpParseError as exc:
                session.reject(400, f"Bad SDP: {exc}"[:80])
                return False
            if media.webrtc is not None and is_webrtc_offer(offer, session.offer):
                return await self._answer_webrtc(media.webrtc, session.offer)
        try:
            leg = await RtpSession.bind(media.bind, media.pool, media.clock)
        except PortsExhausted as exc:  # the range is full, or other programs hold its ports
            self.log("call.no_rtp_ports", reason=str(exc)[:200])
            session.reject(503)
            return False
        self.leg = leg
        if self.ended.is_set():  # cancelled while we were binding
            leg.close()
            return False
        if offer is not None:
            connected = self._answer_offer(offer, leg)
        else:
            connected = await self._offer_in_answer(leg)
        if not connected:
            return False
        self.answer_time = time.time()
        session.on_dtmf = lambda digit: leg.on_dtmf(digit)  # SIP INFO joins RFC 4733
        self.media_updater = attach_media_updates(
            session, leg, media.public_address, SUPPORTED_CODECS
        )  # re-INVITEs
        leg.start()
        self._watch_media(media, leg, session.flow.remote[0])
        self.log("call.answered", codec=leg.codec)
        for callback in self.on_answered:
            callback(self)
        return True

    async def _answer_webrtc(self, legs: WebRtcLegs, offer: bytes) -> bool:
        """A browser phone's offer (ICE, DTLS-SRTP): an aiortc leg answers it, every
        candidate in our SDP (no trickle); media flows once ICE and DTLS are done."""
        session = self.session
        leg = self.leg = legs()
        try:
            answer = await leg.answer_offer(offer.decode("utf-8", "replace"))
        except SdpRejected as exc:
            self.log("call.bad_offer", reason=str(exc)[:200])
            leg.close()
            session.reject(488)
            return False
        if self.ended.is_set():  # the caller gave up while ICE gathered
            leg.close()
            return False
        session.ring()
        session.answer(answer.encode())
        self.answer_time = time.time()
        session.on_dtmf = lambda digit: leg.on_dtmf(digit)  # SIP INFO
        attach_midcall_offers(session, answer.encode(), offer)  # hold, resume, refreshes
        end_with_leg(leg, self.hangup)
        self.log("call.answered", codec=leg.browser_codec, media="webrtc")
        for callback in self.on_answered:
            callback(self)
        return True

    def _answer_offer(self, offer: SessionDescription, leg: RtpSession) -> bool:
        """The usual case: the INVITE offered, our 200 OK answers (RFC 3264 §6)."""
        session, media = self.session, self.media
        sdes = SdesAnswerer()  # an RTP/SAVP offer gets SRTP with SDES keys (RFC 4568)
        try:
            answer, codec, dtmf = negotiate_answer(
                offer,
                SUPPORTED_CODECS,
                media.public_address,
                leg.port,
                leg.ssrc,
                crypto_answer=sdes,
            )
        except SdpNegotiationError:
            session.reject(488)
            return False
        if sdes.ours is not None:
            leg.use_srtp(sdes.context())
        # No media before consent: the offer's address may be a forged victim's. The
        # leg sends once the ACK comes (or the peer's RTP does), never to a stranger.
        leg.await_consent()
        session.on_acked = leg.consent
        audio = next(m for m in offer.media if m.media == "audio" and m.port)
        leg.configure(codec, remote_rtp_address(offer, audio), dtmf=dtmf, ptime=audio.ptime or 20)
        session.ring()
        session.answer(answer.serialize())
        return True

    async def _offer_in_answer(self, leg: RtpSession) -> bool:
        """A delayed offer: the INVITE had no SDP, so our 200 OK offers and the ACK
        answers (RFC 3261 §13.2.1, RFC 3264 §5). Media starts once the ACK is here."""
        session, media = self.session, self.media
        acked: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def on_acked() -> None:
            if not acked.done():
                acked.set_result(True)

        session.on_acked = on_acked
        offer = build_offer(media.public_address, leg.port, SUPPORTED_CODECS, leg.ssrc)
        session.ring()
        session.answer(offer.serialize())
        ended: asyncio.Future[bool] = asyncio.ensure_future(self.ended.wait())
        await asyncio.wait([acked, ended], return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        if not acked.done():
            return False  # the caller gave up, or no ACK came (the UA sent BYE)
        try:
            answer = SessionDescription.parse(session.ack_sdp or b"")
            audio = next(m for m in answer.media if m.media == "audio" and m.port)
            codec = next(c for c in audio.codecs if any(c.matches(o) for o in VOICE_CODECS))
        except (SdpParseError, StopIteration):
            self.log("call.bad_answer_in_ack")
            session.hangup()  # RFC 3261 §13.2.2.4: an unusable answer ends the session
            return False
        dtmf = next((c for c in audio.codecs if c.matches(TELEPHONE_EVENT)), None)
        leg.configure(codec, remote_rtp_address(answer, audio), dtmf=dtmf, ptime=audio.ptime or 20)
        return True

    def hangup(self) -> None:
        self.session.hangup()

    def reject(self, status: int) -> None:
        self.reject_status = status
        self.session.reject(status)

    def _terminated(self, reason: EndReason) -> None:
        self.end_reason = reason
        self.end_time = time.time()
        if self.leg is not None:
            self.leg.close()
        self.ended.set()
        self.log("call.ended", reason=reason.value, duration=round(self.duration, 3))
        for callback in self.on_ended:
            callback(self)


Router = Callable[[InviteSession], Awaitable["App | None"]]


DRAIN_RETRY_AFTER_S = 30


class CallManager:
    """Hands each incoming INVITE to the application its router picks."""

    def __init__(self, ua: UserAgent, media: MediaSettings, router: Router) -> None:
        self.ua = ua
        self.media = media
        self.router = router
        self.calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task] = set()
        self.accepting = True  # False while the node drains: new calls get 503
        ua.on_invite = self.on_invite

    def on_invite(self, session: InviteSession) -> None:
        if not self.accepting:
            # RFC 3261 §21.5.4: overloaded or in maintenance; another node may take it.
            session.reject(503, "Draining", headers=[("Retry-After", str(DRAIN_RETRY_AFTER_S))])
            return
        task = asyncio.get_running_loop().create_task(self._run(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, session: InviteSession) -> None:
        try:
            app = await self.router(session)
        except Exception:
            log.exception("call.routing_failed", extra={"call_id": session.call_id})
            session.reject(500)
            return
        if app is None:
            session.reject(404)
            return
        call = Call(session, self.media)
        self.calls[call.sid] = call
        try:
            await app(call)
        except Exception:
            log.exception("call.app_failed", extra={"call_id": call.call_id})
            session.hangup()
        finally:
            self.calls.pop(call.sid, None)
            if call.leg is not None and not call.leg.closed:
                call.leg.close()
