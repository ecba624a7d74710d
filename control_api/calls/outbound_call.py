"""Calls we place: an INVITE out (sip/uac.py) and the RTP leg it negotiates.

An :class:`OutboundCall` looks like an inbound :class:`~control_api.calls.call.Call`
to everything above it (the TwiML runner, the bridge, the REST API): it has a
SID, a leg once media flows, ``ended``, ``answered``, ``hangup()``. It rings
until the callee answers, fails or ``timeout`` passes, and takes early media
from a 183 so a caller can hear the far end's ringback or announcements.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import KW_ONLY, InitVar, dataclass

from control_api.calls.call import SUPPORTED_CODECS, VOICE_CODECS, MediaSettings
from control_api.calls.leg import Placing
from control_api.calls.media_update import MediaUpdater, attach_media_updates
from control_api.calls.trunks import Trunk
from media.ports import PortsExhausted
from media.sdp import (
    TELEPHONE_EVENT,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    build_offer,
    remote_rtp_address,
)
from media.session import RtpSession
from sip.invite import EndReason
from sip.transport import Flow
from sip.ua import UserAgent
from sip.uac import OutgoingInvite, SipCredentials

__all__ = ["Destination", "OutboundCall", "failure_status"]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an INVITE goes: its Request-URI, the flow to send it on, and how to log in."""

    target: str  # Request-URI
    flow: Flow
    credentials: SipCredentials | None = None
    to: str | None = None  # the To URI when it differs from the Request-URI
    kind: str = "sip"  # sip, trunk, client, number (what Twilio bills and shows)
    label: str = ""  # the dialled address as the application wrote it
    trunk: Trunk | None = None  # the trunk it leaves through (its caller-ID rule applies)


def failure_status(sip_status: int | None) -> str:
    """Twilio's call status for a call that never connected (reference §2)."""
    if sip_status in (486, 600):
        return "busy"
    if sip_status in (408, 480, 487, 603):
        return "no-answer"
    return "failed"


@dataclass(eq=False)
class OutboundCall(Placing):
    """One call we place; ``await call.connect()`` says whether it was answered."""

    direction = "outbound-api"  # a child call of <Dial> is "outbound-dial"

    ua: UserAgent
    media: MediaSettings
    destination: Destination
    _: KW_ONLY
    from_user: str
    from_display: str | None = None
    timeout: float = 60.0
    headers: list[tuple[str, str]] | None = None
    call_sid: InitVar[str | None] = None  # the Calls SID (a REST call's own), else a new one

    def __post_init__(self, call_sid: str | None) -> None:
        self._start(call_sid)
        self.leg: RtpSession | None = None
        self.media_updater: MediaUpdater | None = None  # once answered: its re-INVITEs
        self.session: OutgoingInvite | None = None
        self.sip_status: int | None = None
        self.end_reason: EndReason | None = None

    # -- the Call interface

    @property
    def call_id(self) -> str:
        return self.session.call_id if self.session is not None else ""

    def hangup(self) -> None:
        if self.session is not None:
            self.session.hangup()
        elif not self.ended.is_set():
            self._finish(EndReason.CANCELLED)

    reject = hangup  # the runner's <Reject> on a call that is ours to refuse
    _stop_ringing = hangup  # a CANCEL while it rings

    def _failure(self) -> str:
        return failure_status(self.sip_status)

    # -- placing the call

    async def _connect(self) -> bool:
        media = self.media
        if self.ended.is_set():
            return False
        try:
            leg = await RtpSession.bind(media.bind, media.pool, media.clock)
        except PortsExhausted:
            self.sip_status = 503
            self._finish(EndReason.REJECTED)
            return False
        if self.ended.is_set():  # canceled while binding
            leg.close()
            return False
        self.leg = leg
        offer = build_offer(media.public_address, leg.port, SUPPORTED_CODECS, leg.ssrc)
        destination = self.destination
        session = OutgoingInvite(
            self.ua,
            target=destination.target,
            flow=destination.flow,
            from_user=self.from_user,
            from_display=self.from_display,
            to=destination.to,
            sdp=offer.serialize(),
            credentials=destination.credentials,
            headers=self.headers,
        )
        self.session = session
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(value: bool) -> None:
            if not outcome.done():
                outcome.set_result(value)

        session.on_progress = self._progress
        session.on_answered = lambda sdp: settle(self._answered(sdp))

        def failed(status: int, reason: str) -> None:
            self._failed(status)
            settle(False)

        session.on_failed = failed
        session.on_terminated = self._terminated
        session.on_dtmf = lambda digit: leg.on_dtmf(digit)
        session.start()
        self.log("call.dialing", to=destination.target, transport=destination.flow.transport)
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), self.timeout)
        except TimeoutError:
            self.log("call.ring_timeout", seconds=self.timeout)
            self.sip_status = 408
            session.cancel()
            # The CANCEL's 487 settles the outcome; a 2xx that crossed it is hung up.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(outcome), 5.0)
            if not outcome.done():
                self._finish(EndReason.CANCELLED)
            return False

    def _progress(self, status: int, sdp: bytes | None) -> None:
        if not self.ringing.is_set():
            self.ringing.set()
            for callback in self.on_ringing:
                callback(self)
        if sdp is not None and self.leg is not None and self.leg.destination is None:
            # Early media (RFC 3960): listen before the answer, but send only once the
            # far end answers or its RTP shows it listens at the address it gave.
            self.leg.await_consent()
            self._configure(sdp)

    def _answered(self, sdp: bytes | None) -> bool:
        session, leg = self.session, self.leg
        assert session is not None and leg is not None  # both set before the INVITE went out
        if self.ended.is_set():
            return False
        if sdp is None or not self._configure(sdp):
            self.log("call.bad_answer")
            session.hangup()
            return False
        self.answer_time = time.time()
        self.sip_status = 200
        leg.consent()  # the answer is the far end's consent to our media
        self.media_updater = attach_media_updates(
            session, leg, self.media.public_address, SUPPORTED_CODECS
        )
        leg.start()
        self._watch_media(self.media, leg, self.destination.flow.remote[0])
        self.log("call.answered", codec=leg.codec)
        for callback in self.on_answered:
            callback(self)
        return True

    def _configure(self, sdp: bytes) -> bool:
        leg = self.leg
        assert leg is not None  # bound before the INVITE went out
        try:
            answer = SessionDescription.parse(sdp)
            audio = next(m for m in answer.media if m.media == "audio" and m.port)
            codec = next(c for c in audio.codecs if any(c.matches(o) for o in VOICE_CODECS))
            remote = remote_rtp_address(answer, audio)
        except (SdpParseError, SdpNegotiationError, StopIteration):
            return False
        dtmf = next((c for c in audio.codecs if c.matches(TELEPHONE_EVENT)), None)
        leg.configure(codec, remote, dtmf=dtmf, ptime=audio.ptime or 20)
        leg.start()
        return True

    def _failed(self, status: int) -> None:
        if self.sip_status != 408:  # our own ring timeout stays a timeout
            self.sip_status = status
        self._finish(EndReason.CANCELLED if status == 487 else EndReason.REJECTED)

    def _terminated(self, reason: EndReason) -> None:
        self._finish(reason)

    def _finish(self, reason: EndReason) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.end_time = time.time()
        if self.leg is not None:
            self.leg.close()
        self.ended.set()
        self.log(
            "call.ended",
            reason=reason.value,
            status=self.status,
            duration=round(self.duration, 3),
        )
