"""Calls we place: an INVITE out (sip/uac.py) and the RTP leg it negotiates.

An :class:`OutboundCall` looks like an inbound :class:`~control_api.calls.call.Call`
to everything above it (the TwiML runner, the bridge, the REST API): it has a
SID, a leg once media flows, ``ended``, ``answered``, ``hangup()``. It rings
until the callee answers, fails or ``timeout`` passes, and takes early media
from a 183 so a caller can hear the far end's ringback or announcements. A
destination with several hops (trunks, entry points, DNS targets) is tried hop by
hop: a 503, a 408 or no response at all moves the call on to the next
(control_api/calls/failover.py); it stays one call with one SID. Each hop's INVITE
follows its own trunk's rules: the caller as that trunk shows it (its ``caller_id``,
number format, ``P-Asserted-Identity``; caller_presentation.py), its ``srtp`` (fresh
SDES keys for every hop that offers them), and its ``outbound_proxy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, dataclass

from control_api.calls.call import SUPPORTED_CODECS, VOICE_CODECS, MediaSettings
from control_api.calls.caller_presentation import Presentation, present_caller
from control_api.calls.failover import NO_RESPONSE_S, Attempt, Hop, fails_over
from control_api.calls.leg import Placing
from control_api.calls.media_update import MediaUpdater, attach_media_updates
from control_api.calls.srtp_offers import SrtpAnswerRefused, offer_for, take_answer
from control_api.calls.trunks import Trunk
from control_api.calls.webrtc_sip import (
    WEBSOCKET_TRANSPORTS,
    attach_midcall_offers,
    end_with_leg,
)
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
from signaling.webrtc_leg import SdpRejected, WebRtcLeg
from sip.invite import EndReason
from sip.transport import Flow
from sip.ua import UserAgent
from sip.uac import OutgoingInvite, OutgoingState, SipCredentials

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
    hops: tuple[Hop, ...] = ()  # every place to try in turn, the first on ``flow``
    account_sid: str = ""  # who dials (the call's events and notifications are theirs)

    def attempts(self) -> tuple[Hop, ...]:
        """The hops to try: ``hops``, or the one the target and flow name."""
        if self.hops:
            return self.hops
        transport, (address, port) = self.flow.transport, self.flow.remote
        return (Hop(self.target, transport, address, port, "", self.credentials, self.trunk),)

    @property
    def srtp(self) -> str:
        """SDES-SRTP on the call's first hop (:meth:`srtp_for`)."""
        return self.srtp_for(self.attempts()[0])

    def srtp_for(self, hop: Hop) -> str:
        """SDES-SRTP on ``hop`` (off, optional, mandatory): its trunk's ``srtp``; a ``sip:``
        target with Twilio's ``;secure=true`` requires it, and one reached over TLS (``sips:``,
        ``transport=tls``) is offered it as a TLS trunk is, optional; anything else (phones,
        our own numbers, plain ``sip:``) off."""
        if hop.trunk is not None:
            return hop.trunk.srtp
        if self.kind != "sip":
            return "off"
        if re.search(r";secure=true(?:;|$)", hop.target, re.IGNORECASE):
            return "mandatory"
        return "optional" if hop.transport.upper() == "TLS" else "off"


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
    trunk_caller_id: bool = False  # a hop's trunk's caller_id replaces from_user
    call_sid: InitVar[str | None] = None  # the Calls SID (a REST call's own), else a new one

    def __post_init__(self, call_sid: str | None) -> None:
        self._start(call_sid)
        self.leg: RtpSession | WebRtcLeg | None = None
        self.media_updater: MediaUpdater | None = None  # once answered: its re-INVITEs
        self.session: OutgoingInvite | None = None
        self.sip_status: int | None = None
        self.end_reason: EndReason | None = None
        self.hop: Hop | None = None  # the hop being tried, then the one that answered
        self.on_attempt: list[Callable[[Attempt], None]] = []  # each hop tried, as it ends
        self._giving_up = False  # hung up or canceled while it rang: try no more hops
        self._settle: Callable[[tuple[str, int]], None] | None = None
        self._sdes = offer_for(self.destination.srtp)  # SDES-SRTP offered, or None
        self._srtp_refused: tuple[int, str] | None = None  # why the answer's SRTP was refused

    # -- the Call interface

    @property
    def call_id(self) -> str:
        return self.session.call_id if self.session is not None else ""

    def hangup(self) -> None:
        if not self.answered:
            self._giving_up = True
        session = self.session
        if session is not None and session.state is OutgoingState.CALLING and self._settle:
            session.cancel()  # nothing came back yet: stop waiting for this hop now
            self._settle(("canceled", 487))
        elif session is not None and session.state is not OutgoingState.TERMINATED:
            session.hangup()
        elif not self.ended.is_set():
            self._finish(EndReason.CANCELLED)

    reject = hangup  # the runner's <Reject> on a call that is ours to refuse
    _stop_ringing = hangup  # a CANCEL while it rings

    def _failure(self) -> str:
        return failure_status(self.sip_status)

    # -- placing the call

    async def _connect(self) -> bool:
        if self.ended.is_set():
            return False
        made = await self._leg_and_offer()
        if made is None:
            return False
        leg, offer = made
        if self.ended.is_set():  # canceled while binding or gathering
            leg.close()
            return False
        self.leg = leg
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        hops = self.destination.attempts()
        for index, hop in enumerate(hops):
            if self._giving_up or self.ended.is_set():
                self._finish(EndReason.CANCELLED)
                return False
            flow = self.destination.flow if index == 0 else self._flow(hop)
            started = loop.time()
            if index and isinstance(self.leg, RtpSession):  # this hop's SRTP, fresh keys
                renewed = await self._renew_offer(hop)
                if renewed is None:
                    return False
                offer = renewed
            if flow is None:
                outcome: tuple[str, int] = ("failed", 503)
            else:
                outcome = await self._try(hop, flow, offer, deadline, index + 1 == len(hops))
            kind, status = outcome
            moved_on = (
                kind in ("failed", "silent")
                and fails_over(None if kind == "silent" else status)
                and index + 1 < len(hops)
                and not self._giving_up
            )
            shown = {"silent": None, "timeout": 408, "answered": self._final_status()}
            self._attempted(hop, shown.get(kind, status), loop.time() - started, moved_on)
            if moved_on:
                continue
            if kind == "answered":
                return bool(status)
            if kind == "timeout":
                return await self._ring_timeout()
            self._failed(487 if kind in ("silent", "canceled") else status)
            return False
        return False

    async def _leg_and_offer(self) -> tuple[RtpSession | WebRtcLeg, bytes] | None:
        """The leg the call's media will use, and our offer: WebRTC toward a browser
        phone (a WebSocket flow, RFC 7118), else RTP (with SDES keys when the
        destination asks for SRTP)."""
        media = self.media
        if media.webrtc is not None and self.destination.flow.transport in WEBSOCKET_TRANSPORTS:
            webrtc = media.webrtc()
            return webrtc, (await webrtc.create_offer()).encode()
        try:
            leg = await RtpSession.bind(media.bind, media.pool, media.clock)
        except PortsExhausted:
            self.sip_status = 503
            self._finish(EndReason.REJECTED)
            return None
        return leg, self._rtp_offer(leg)

    def _rtp_offer(self, leg: RtpSession) -> bytes:
        sdes = self._sdes
        offer = build_offer(
            self.media.public_address,
            leg.port,
            SUPPORTED_CODECS,
            leg.ssrc,
            protocol=sdes.protocol if sdes is not None else "RTP/AVP",
            crypto=sdes.lines if sdes is not None else (),
        )
        return offer.serialize()

    async def _renew_offer(self, hop: Hop) -> bytes | None:
        """The offer for a hop after the first: its own trunk's ``srtp`` with fresh keys
        (keys go to one peer only). A leg an earlier hop's early media set up (its
        address, its SRTP) is replaced by a new one. None: no port for it (the call ends)."""
        leg = self.leg
        assert isinstance(leg, RtpSession)
        self._sdes = offer_for(self.destination.srtp_for(hop))
        if leg.destination is not None or leg.srtp is not None:
            try:
                fresh = await RtpSession.bind(self.media.bind, self.media.pool, self.media.clock)
            except PortsExhausted:
                self._failed(503)
                return None
            if self.ended.is_set():  # canceled while binding
                fresh.close()
                return None
            leg.close()
            self.leg = leg = fresh
        return self._rtp_offer(leg)

    def presentation(self, hop: Hop, flow: Flow) -> Presentation:
        """The caller as ``hop``'s INVITE shows it: its trunk's ``caller_id`` when it forces
        one (``trunk_caller_id``), in that trunk's format (caller_presentation.py)."""
        trunk = hop.trunk
        caller = self.from_user
        if trunk is not None and trunk.caller_id and self.trunk_caller_id:
            caller = trunk.caller_id
        return present_caller(caller, self.from_display, trunk, self.ua.host_port(flow))

    async def _answered_webrtc(self, sdp: bytes | None) -> bool:
        """The browser phone's answer, applied to our WebRTC leg."""
        session, leg = self.session, self.leg
        assert session is not None and isinstance(leg, WebRtcLeg)  # set before the INVITE
        if self.ended.is_set():
            return False
        try:
            await leg.accept_answer((sdp or b"").decode("utf-8", "replace"))
        except SdpRejected as exc:
            self.log("call.bad_answer", reason=str(exc)[:200])
            session.hangup()
            return False
        if self.ended.is_set():
            return False
        self.answer_time = time.time()
        self.sip_status = 200
        end_with_leg(leg, self.hangup)
        attach_midcall_offers(session, session.local_sdp or b"", sdp or b"")
        self.log("call.answered", codec=leg.browser_codec, media="webrtc")
        for callback in self.on_answered:
            callback(self)
        return True

    def _final_status(self) -> int | None:
        return self.session.final_status if self.session is not None else None

    def _flow(self, hop: Hop) -> Flow | None:
        return self.ua.flow_for(hop.transport, hop.address, hop.port)

    async def _try(
        self, hop: Hop, flow: Flow, sdp: bytes, deadline: float, last: bool
    ) -> tuple[str, int]:
        """One INVITE to ``hop``: ("answered", 1 or 0), ("failed", status), ("silent", 0)
        when nothing came back within NO_RESPONSE_S (and another hop is left),
        ("canceled", 487) or ("timeout", 0) at the ring deadline."""
        leg = self.leg
        assert leg is not None  # bound before the first hop
        destination = self.destination
        shown = self.presentation(hop, flow)
        session = OutgoingInvite(
            self.ua,
            target=hop.target,
            flow=flow,
            from_user=shown.from_user,
            from_display=shown.from_display,
            to=destination.to,
            sdp=sdp,
            credentials=hop.credentials,
            headers=[*shown.headers, *(self.headers or ())],
            proxy=hop.proxy,
        )
        self.session, self.hop = session, hop
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[tuple[str, int]] = loop.create_future()

        def settle(value: tuple[str, int]) -> None:
            if not outcome.done():
                outcome.set_result(value)

        self._settle = settle
        session.on_progress = self._progress
        if isinstance(leg, WebRtcLeg):  # the answer is applied by aiortc, asynchronously

            def answered(sdp: bytes | None) -> None:
                task = asyncio.ensure_future(self._answered_webrtc(sdp))
                task.add_done_callback(lambda t: settle(("answered", int(_succeeded(t)))))

            session.on_answered = answered
        else:
            session.on_answered = lambda sdp: settle(("answered", int(self._answered(sdp))))
        session.on_failed = lambda status, reason: settle(("failed", status))
        session.on_terminated = self._terminated
        session.on_dtmf = lambda digit: leg.on_dtmf(digit)
        self.log(
            "call.dialing", to=hop.target, transport=flow.transport, hop=hop.where, host=hop.name
        )
        try:
            session.start()
        except (OSError, ValueError) as exc:  # e.g. an IPv6 target for an IPv4 socket
            self.log("call.unreachable", hop=hop.where, error=str(exc))
            session.on_failed = session.on_terminated = _ignore
            return ("failed", 503)
        if not last:  # RFC 3261 Timer B is 32 s: another hop is tried long before
            wait = min(NO_RESPONSE_S, max(deadline - loop.time(), 0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(outcome), wait)
            if not outcome.done() and not session.responded and loop.time() < deadline:
                session.cancel()  # a late 1xx gets CANCEL, a late 2xx ACK and BYE
                session.on_progress = session.on_answered = _ignore
                session.on_failed = session.on_terminated = _ignore
                return ("silent", 0)
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), max(deadline - loop.time(), 0))
        except TimeoutError:
            return ("timeout", 0)

    async def _ring_timeout(self) -> bool:
        session = self.session
        assert session is not None  # a hop was tried
        self.log("call.ring_timeout", seconds=self.timeout)
        self.sip_status = 408
        ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def failed(status: int, reason: str) -> None:
            if not ended.done():
                ended.set_result(status)

        session.on_failed = failed
        session.cancel()
        # The CANCEL's 487 settles the outcome; a 2xx that crossed it is hung up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ended), 5.0)
        self._finish(EndReason.CANCELLED)
        return False

    def _attempted(self, hop: Hop, status: int | None, seconds: float, moved_on: bool) -> None:
        attempt = Attempt(hop, status, seconds, moved_on)
        for callback in self.on_attempt:
            callback(attempt)

    def _progress(self, status: int, sdp: bytes | None) -> None:
        if not self.ringing.is_set():
            self.ringing.set()
            for callback in self.on_ringing:
                callback(self)
        if not isinstance(self.leg, RtpSession):
            return  # a browser phone's early media is not taken (its answer brings ICE)
        if sdp is not None and self.leg.destination is None:
            # Early media (RFC 3960): listen before the answer, but send only once the
            # far end answers or its RTP shows it listens at the address it gave.
            self.leg.await_consent()
            self._configure(sdp)

    def _answered(self, sdp: bytes | None) -> bool:
        session, leg = self.session, self.leg
        assert session is not None and isinstance(leg, RtpSession)  # set before the INVITE
        if self.ended.is_set():
            return False
        if sdp is None or not self._configure(sdp):
            self.log("call.bad_answer")
            self.problem = self._srtp_refused
            session.hangup()
            return False
        self.answer_time = time.time()
        self.sip_status = 200
        leg.consent()  # the answer is the far end's consent to our media
        self.media_updater = attach_media_updates(
            session, leg, self.media.public_address, SUPPORTED_CODECS
        )
        leg.start()
        self._watch_media(self.media, leg, session.flow.remote[0])
        self.log("call.answered", codec=leg.codec)
        for callback in self.on_answered:
            callback(self)
        return True

    def _configure(self, sdp: bytes) -> bool:
        leg = self.leg
        assert isinstance(leg, RtpSession)  # bound before the INVITE went out
        try:
            answer = SessionDescription.parse(sdp)
            audio = next(m for m in answer.media if m.media == "audio" and m.port)
            codec = next(c for c in audio.codecs if any(c.matches(o) for o in VOICE_CODECS))
            remote = remote_rtp_address(answer, audio)
        except (SdpParseError, SdpNegotiationError, StopIteration):
            return False
        self._srtp_refused = None
        try:
            suite = take_answer(self._sdes, leg, audio)
        except SrtpAnswerRefused as exc:
            self._srtp_refused = exc.problem
            self.log("call.srtp_refused", reason=exc.reason, mandatory=exc.mandatory)
            return False
        if suite is not None:
            self.log("call.srtp", suite=suite)
        dtmf = next((c for c in audio.codecs if c.matches(TELEPHONE_EVENT)), None)
        leg.configure(codec, remote, dtmf=dtmf, ptime=audio.ptime or 20)
        leg.start()
        return True

    def _failed(self, status: int) -> None:
        if self.sip_status != 408:  # our own ring timeout stays a timeout
            self.sip_status = status
        self._finish(EndReason.CANCELLED if status == 487 else EndReason.REJECTED)

    def _terminated(self, reason: EndReason) -> None:
        self._settle = None
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


def _succeeded(task: asyncio.Task[bool]) -> bool:
    """A task's True, or False when it was cancelled or failed (a bug, logged by asyncio)."""
    return not task.cancelled() and task.exception() is None and task.result()


def _ignore(*args: object) -> None:
    pass
