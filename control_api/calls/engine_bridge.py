"""A ``<Dial>`` (or ``<Dial><Queue>``) bridge handed to rtpengine (docs/rtpengine.md).

When ``--rtpengine`` is set and both parties are SIP calls with plain RTP, the
bridge's media leaves the process: rtpengine is given each party's media as an
ng ``offer`` (the caller's side) and ``answer`` (the callee's), and each party
is moved onto rtpengine by a re-INVITE offering the SDP rtpengine returned for
it (same codec relayed; different codecs transcoded by rtpengine). The
in-process relay keeps running underneath, so audio flows while the
re-INVITEs are in flight and goes on in process when rtpengine refuses, does
not answer, or a party declines the re-INVITE (each a fallback, logged).

Whoever listens to a party's leg (``<Start><Stream>`` forks, a live recording)
or to the bridge itself (``<Dial record=...>``) hears both parties from
rtpengine's ``subscribe request`` copies, sent to RTP sessions of ours
(engine_forks.py), from before the parties move until the bridge ends. Digits
the parties key (RFC 4733) reach ``on_dtmf`` from rtpengine's DTMF log
(media/rtpengine/dtmf_listener.py), as the in-process bridge reports them.

When the bridge ends, the parties still up whose TwiML goes on are moved back
by re-INVITE to their own RTP port, and the rtpengine call is queried (its
packet and byte totals logged and counted for ``/metrics``) and deleted. While
bridged the call is queried every ``check_s`` seconds: an rtpengine that stops
answering ends the call (both parties get a BYE).

rtpengine 10.5 has no ``connect`` command: with one (rtpengine 11+), the two
parties' existing media could be joined inside rtpengine without the synthetic
offer/answer, and moving the caller back would be a ``disconnect``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import re
from collections.abc import Callable, Collection
from typing import Any

from control_api.calls.call import VOICE_CODECS, Call
from control_api.calls.engine_forks import EngineListeners, Party
from control_api.calls.media_update import is_hold
from control_api.calls.outbound_call import OutboundCall
from media.rtpengine.client import EngineError, EngineUnreachable, RtpEngines, call_totals
from media.rtpengine.dtmf_log import DtmfEvent
from media.sdp import (
    TELEPHONE_EVENT,
    Codec,
    SdpParseError,
    SessionDescription,
    build_offer,
)
from media.session import RtpSession
from media.srtp import CryptoAttribute
from media.taps import Tap
from sip.invite import InviteSession, SessionState

__all__ = ["EngineBridge", "can_use_engine", "hand_over"]

log = logging.getLogger("callswitch.calls")

_MIRRORED = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
REINVITE_S = 8.0  # how long a party gets to answer the re-INVITE that moves it
CHECK_S = 5.0  # how often a bridged call is queried
SILENT_CHECKS = 3  # queries in a row an instance may leave unanswered before the call ends


SipCall = Call | OutboundCall

# What rtpengine's DTMF log (JSON it writes without escaping) can carry unharmed.
_LOG_SAFE = re.compile(r"[A-Za-z0-9@.:_+~!%*()'`<>?/\[\]{}-]+")


def _ng_call_id(sip_call_id: str, b_sid: str, a_sid: str) -> str:
    """The bridge's ng call-id: the caller's SIP Call-ID and the callee's SID, or
    the caller's SID instead of a Call-ID that would break the DTMF log's JSON."""
    head = sip_call_id if _LOG_SAFE.fullmatch(sip_call_id) else a_sid
    return f"{head}/{b_sid}"


def can_use_engine(a: object, b: object) -> bool:
    """Whether both parties are answered SIP calls on RTP or SDES-SRTP with no offer in
    flight."""
    for call in (a, b):
        if not isinstance(call, Call | OutboundCall) or call.ended.is_set():
            return False
        session = call.session
        if session is None or session.reinvite_busy or call.media_updater is None:
            return False
        if not isinstance(call.leg, RtpSession) or call.leg.destination is None:
            return False
        if b"RTP/SAVP" in (session.local_sdp or b"") and call.leg.srtp is None:
            return False  # a secure profile without SDES keys of ours (DTLS): in process
    return True


def _leg_codecs(leg: RtpSession) -> list[Codec]:
    """The codec (and telephone-event) the leg negotiated, with its payload types."""
    base = next((c for c in VOICE_CODECS if c.name.upper() == leg.codec), VOICE_CODECS[0])
    codecs = [Codec(leg.payload_type, base.name, base.clock_rate, base.channels, base.fmtp)]
    if leg.dtmf_payload_type >= 0:
        codecs.append(
            Codec(leg.dtmf_payload_type, TELEPHONE_EVENT.name, 8000, fmtp=TELEPHONE_EVENT.fmtp)
        )
    return codecs


def _protocol(leg: RtpSession) -> str:
    return "RTP/AVP" if leg.srtp is None else "RTP/SAVP"


def _peer_sdp(leg: RtpSession, crypto: CryptoAttribute | None = None) -> str:
    """What the party's phone receives at and sends: its side as rtpengine must see it.
    An SRTP party's side carries the key it sends with (``crypto``: that key under the
    tag rtpengine offered for its suite, when rtpengine made the offer)."""
    assert leg.destination is not None  # checked by can_use_engine
    host, port = leg.destination
    keys = [] if leg.srtp is None else [(crypto or leg.srtp.theirs).serialize()]
    sdp = build_offer(host, port, _leg_codecs(leg), leg.ssrc, protocol=_protocol(leg), crypto=keys)
    return sdp.serialize().decode()


def _engine_crypto(engine_sdp: str, suite: str) -> CryptoAttribute | None:
    """rtpengine's usable ``a=crypto`` of ``suite`` in an SDP it made."""
    try:
        sdp = SessionDescription.parse(engine_sdp)
        audio = next(m for m in sdp.media if m.media == "audio" and m.port)
    except (SdpParseError, StopIteration):
        return None
    for line in audio.crypto:
        try:
            attribute = CryptoAttribute.parse(line)
        except ValueError:
            continue
        if attribute.suite == suite and attribute.usable:
            return attribute
    return None


def _learning(leg: RtpSession) -> dict[str, Any]:
    """Follow the SDP address exactly unless it is private (a NAT): as the leg did
    itself (media/session.py), rtpengine latches onto the packets' source only
    then, and at once (its default waits seconds before it learns)."""
    assert leg.destination is not None
    try:
        address = ipaddress.ip_address(leg.destination[0])
    except ValueError:
        return {"endpoint-learning": "immediate"}
    if address.is_private and not address.is_loopback:
        return {"endpoint-learning": "immediate"}
    return {"flags": ["asymmetric"]}


def _rtpmap(codec: Codec) -> str:
    channels = f"/{codec.channels}" if codec.channels != 1 else ""
    return f"{codec.name}/{codec.clock_rate}{channels}"


def _our_offer(
    call: SipCall, engine_sdp: str, crypto: CryptoAttribute | None = None
) -> bytes | None:
    """The re-INVITE offer that moves ``call`` to rtpengine's address for it; toward an
    SRTP party with rtpengine's key (``crypto``, or the one rtpengine's SDP carries)."""
    try:
        sdp = SessionDescription.parse(engine_sdp)
        audio = next(m for m in sdp.media if m.media == "audio" and m.port)
    except (SdpParseError, StopIteration):
        return None
    address = audio.connection_address or sdp.connection_address
    if not address:
        return None
    keys: list[str] = []
    if isinstance(call.leg, RtpSession) and call.leg.srtp is not None:
        crypto = crypto or _engine_crypto(engine_sdp, call.leg.srtp.theirs.suite)
        if crypto is None or audio.protocol != "RTP/SAVP":
            return None
        keys = [crypto.serialize()]
    offer = build_offer(address, audio.port, audio.codecs, 0, protocol=audio.protocol, crypto=keys)
    assert call.media_updater is not None
    return call.media_updater.versioned(offer)


def _answered_key(response: Any) -> bytes | None:
    """The key of the one ``a=crypto`` in a party's answer (None: none or unusable)."""
    try:
        sdp = SessionDescription.parse(response.body or b"")
        audio = next(m for m in sdp.media if m.media == "audio" and m.port)
        [line] = audio.crypto
        return CryptoAttribute.parse(line).key
    except (SdpParseError, StopIteration, ValueError):
        return None


async def _answer_or_end(call: SipCall, answered: asyncio.Future[Any]) -> Any:
    """The final response to a re-INVITE of ours; None when it timed out or the
    call ended first."""
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait(
            [answered, ended], timeout=REINVITE_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        ended.cancel()
    return answered.result() if answered.done() else None


async def _acked(call: SipCall) -> bool:
    """Wait for the ACK of our 2xx to the party's INVITE: a re-INVITE sent before it
    may cross the party's ACK (RFC 3261 §14.1; SIPp aborts the call then). False when
    the call ended or no ACK came in time."""
    session = call.session
    if not isinstance(session, InviteSession) or session.state is not SessionState.ANSWERED:
        return not call.ended.is_set()
    acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    previous = session.on_acked

    def on_acked() -> None:
        previous()
        if not acked.done():
            acked.set_result(None)

    session.on_acked = on_acked
    try:
        await _answer_or_end(call, acked)
    finally:
        if session.on_acked is on_acked:
            session.on_acked = previous
    return acked.done() and not call.ended.is_set()


def _packets_from(reply: dict[str, Any], tag: str) -> int:
    """The packets rtpengine received from the party ``tag`` (a ``query`` reply)."""
    tags = reply.get("tags")
    party = tags.get(tag) if isinstance(tags, dict) else None
    total = 0
    for media in party.get("medias", []) if isinstance(party, dict) else []:
        for stream in media.get("streams", []) if isinstance(media, dict) else []:
            stats = stream.get("stats") if isinstance(stream, dict) else None
            packets = stats.get("packets") if isinstance(stats, dict) else None
            total += packets if isinstance(packets, int) else 0
    return total


class EngineBridge:
    """Two parties on one rtpengine call (see the module doc)."""

    def __init__(
        self,
        engines: RtpEngines,
        a: SipCall,
        b: SipCall,
        *,
        check_s: float = CHECK_S,
        tap: Tap | None = None,
        on_dtmf: Callable[[int, str], None] | None = None,
    ) -> None:
        """``tap`` hears both parties (side 0 ``a``, 1 ``b``: a ``<Dial>`` recording);
        ``on_dtmf`` gets each digit a party keys (its side, the digit), from
        rtpengine's DTMF log, which must then be configured (``engines.dtmf_log``)."""
        self.engines = engines
        self.a, self.b = a, b
        self.call_id = _ng_call_id(a.call_id, b.sid, a.sid)
        self.tags = (a.sid, b.sid)
        self.check_s = check_s
        self.lost = False  # rtpengine stopped answering mid-call
        self.figures: tuple[int, int, int] = (0, 0, 0)  # packets, bytes, errors so far
        self._moved: list[SipCall] = []
        self._told: dict[int, bytes] = {}  # an SRTP party's key as rtpengine was told it
        self._watch: asyncio.Future[None] | None = None
        # Copies of the parties' media for whoever listens to their legs (forks).
        self.listeners: EngineListeners | None = None
        self._listening: asyncio.Future[bool] | None = None
        self.tap = tap
        self.on_dtmf = on_dtmf
        self._unwatch: Callable[[], None] | None = None

    async def start(self) -> bool:
        """Move both parties onto rtpengine: True when both are there."""
        a, b = self.a, self.b
        assert isinstance(a.leg, RtpSession) and isinstance(b.leg, RtpSession)
        if not all(await asyncio.gather(_acked(a), _acked(b))):
            a.log("rtpengine.fallback", reason="a party did not confirm its call (no ACK)")
            return False
        options: dict[str, Any] = {
            "ICE": "remove",
            "transport-protocol": _protocol(b.leg),
            **_learning(a.leg),
        }
        if a.leg.codec != b.leg.codec:
            options["codec"] = {"mask": ["all"], "transcode": [_rtpmap(_leg_codecs(b.leg)[0])]}
        b_crypto: CryptoAttribute | None = None
        for call in (a, b):
            if isinstance(call.leg, RtpSession) and call.leg.srtp is not None:
                self._told[id(call)] = call.leg.srtp.theirs.key
        try:
            for_b = await self.engines.offer(
                self.call_id, self.tags[0], _peer_sdp(a.leg), **options
            )
            if b.leg.srtp is not None:  # its key, under rtpengine's tag for its suite
                offered = _engine_crypto(for_b, b.leg.srtp.theirs.suite)
                if offered is None:
                    raise EngineError(f"rtpengine offered no {b.leg.srtp.theirs.suite}")
                b_crypto = dataclasses.replace(b.leg.srtp.theirs, tag=offered.tag)
            for_a = await self.engines.answer(
                self.call_id,
                self.tags[0],
                self.tags[1],
                _peer_sdp(b.leg, b_crypto),
                **_learning(b.leg),
            )
        except EngineError as exc:
            a.log("rtpengine.fallback", reason=str(exc)[:120])
            await self._delete()
            return False
        offers = (_our_offer(a, for_a), _our_offer(b, for_b))
        if offers[0] is None or offers[1] is None:
            a.log("rtpengine.fallback", reason="unusable SDP from rtpengine")
            await self._delete()
            return False
        # Digits and forks come from rtpengine before the parties move there: no gap.
        self._watch_digits()
        self.listeners = self._listeners(a.leg, b.leg)
        if not await self.listeners.update() and self.listeners.listened():
            a.log("rtpengine.fallback", reason="the forks' subscription failed")
            await self._delete()
            return False
        moved = await asyncio.gather(self._move(a, offers[0]), self._move(b, offers[1]))
        if not all(moved):
            a.log("rtpengine.fallback", reason="a party declined the re-INVITE")
            await self._move_back(self._moved)
            await self._delete()
            return False
        a.log("rtpengine.bridged", ng_call_id=self.call_id, codecs=f"{a.leg.codec}/{b.leg.codec}")
        self._watch = asyncio.ensure_future(self._watch_call())
        return True

    def _listeners(self, a: RtpSession, b: RtpSession) -> EngineListeners:
        media = self.a.media
        codecs = _leg_codecs(a)[0], _leg_codecs(b)[0]
        return EngineListeners(
            self.engines,
            self.call_id,
            (
                Party(self.tags[0], a, b, codecs[0]),
                Party(self.tags[1], b, a, codecs[1]),
            ),
            bind=lambda: RtpSession.bind(media.bind, media.pool, media.clock),
            address=media.public_address,
            tap=self.tap,
        )

    def _watch_digits(self) -> None:
        dtmf_log = self.engines.dtmf_log
        if self.on_dtmf is None or dtmf_log is None or self._unwatch is not None:
            return
        self._unwatch = dtmf_log.watch(self.call_id, self._digit)

    def _digit(self, event: DtmfEvent) -> None:
        """A digit from rtpengine's DTMF log: the party that keyed it is known by
        its ng tag (the subscriptions' copies have tags of their own: ignored)."""
        if event.source_tag not in self.tags or self.on_dtmf is None:
            return
        side = self.tags.index(event.source_tag)
        self.a.log("rtpengine.dtmf", ng_call_id=self.call_id, side=side, digit=event.digit)
        self.on_dtmf(side, event.digit)

    def _unwatch_digits(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def listeners_changed(self) -> None:
        """Someone began or stopped listening to a party's leg (a fork started or
        stopped mid-bridge): subscribe to rtpengine's copies, or unsubscribe."""
        if self.listeners is not None and not self.listeners.closed:
            self._listening = asyncio.ensure_future(self.listeners.update())

    async def _move(self, call: SipCall, offer: bytes) -> bool:
        """Re-INVITE ``call`` with ``offer``: True once it accepted (2xx)."""
        session = call.session
        assert session is not None
        previous = session.local_sdp
        answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_response(response: Any) -> None:
            if not answered.done():
                answered.set_result(response)

        session.on_offer = self._keep_engine_sdp(call)
        session.send_reinvite(offer, on_response=on_response)
        response = await _answer_or_end(call, answered)
        if response is not None and 200 <= response.status < 300:
            self._moved.append(call)
            leg = call.leg
            if isinstance(leg, RtpSession) and leg.srtp is not None:
                # rtpengine was told the key the party sent with: it must keep it (as
                # baresip and callswitch do, RFC 4568 §7.1.4); a new one would need a
                # second offer to rtpengine, so the bridge goes back in process.
                return _answered_key(response) == self._told[id(call)]
            return True
        session.local_sdp = previous
        self._restore(call)
        return False

    @staticmethod
    def _keep_engine_sdp(call: SipCall) -> Any:
        """While on rtpengine, an offer from the party (a session refresh, a hold) is
        answered with rtpengine's address unchanged, its direction mirrored (RFC 3264
        §6.1); a hold is not passed on to rtpengine, but the leg's hold flag gives
        the silence watchdog its ``--rtp-hold-timeout``."""
        session, updater = call.session, call.media_updater
        assert session is not None and updater is not None

        def answer(offer: bytes) -> bytes | None:
            try:
                sdp = SessionDescription.parse(offer)
                ours = SessionDescription.parse(session.local_sdp or b"")
                offered = next(m for m in sdp.media if m.media == "audio" and m.port)
                audio = next(m for m in ours.media if m.media == "audio" and m.port)
            except (SdpParseError, StopIteration):
                return None  # 488
            hold = is_hold(sdp, offered)
            audio.direction = _MIRRORED.get(offered.direction, "sendrecv")
            if hold and audio.direction == "sendrecv":
                audio.direction = "recvonly"
            if isinstance(call.leg, RtpSession):
                call.leg.hold = hold
            return updater.versioned(ours)

        return answer

    @staticmethod
    def _restore(call: SipCall) -> None:
        if call.session is not None and call.media_updater is not None:
            call.session.on_offer = call.media_updater.answer

    async def _move_back(self, calls: list[SipCall]) -> None:
        """Re-INVITE each party still up back to its own RTP port."""

        async def back(call: SipCall) -> None:
            leg, updater = call.leg, call.media_updater
            self._restore(call)
            if call.ended.is_set() or not isinstance(leg, RtpSession) or updater is None:
                return
            srtp = leg.srtp  # our own key again: the party answers with its own
            offer = build_offer(
                updater.public_address,
                leg.port,
                _leg_codecs(leg),
                0,
                protocol=_protocol(leg),
                crypto=[] if srtp is None else [srtp.ours.serialize()],
            )
            session = call.session
            assert session is not None
            answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            session.send_reinvite(
                updater.versioned(offer),
                on_response=lambda r: None if answered.done() else answered.set_result(r),
            )
            response = await _answer_or_end(call, answered)
            if response is not None and 200 <= response.status < 300:
                call.log("rtpengine.moved_back")
            elif not call.ended.is_set():
                call.log("rtpengine.move_back_failed")
                call.hangup()

        await asyncio.gather(*(back(call) for call in calls))

    async def _watch_call(self) -> None:
        """Query the call now and then; an rtpengine that is gone ends the call: at
        once when nothing listens on its port any more (it died), after
        ``SILENT_CHECKS`` unanswered queries in a row when it is only silent (an
        overloaded instance answers late, and its media may still flow). A query that
        gave up while the instance answered anything since the previous one began (a
        late reply, another call's) does not count: our own loop was slow, or it."""
        silent = 0
        loop = asyncio.get_running_loop()
        previous = loop.time()
        while True:
            await asyncio.sleep(self.check_s)
            started = loop.time()
            try:
                reply = await self.engines.query(self.call_id)
            except EngineUnreachable as exc:
                heard = self.engines.last_heard(self.call_id)
                late = not exc.closed and heard is not None and heard >= previous
                previous = started
                if late:
                    continue  # it answers, late
                silent += 1
                if exc.closed or silent >= SILENT_CHECKS:
                    self._lost(str(exc))
                    return
                continue
            except EngineError as exc:  # it no longer knows the call (restarted)
                self._lost(str(exc))
                return
            previous = started
            silent = 0
            self.figures = call_totals(reply)
            for call, tag in zip((self.a, self.b), self.tags, strict=True):
                if isinstance(call.leg, RtpSession):  # --rtp-timeout sees rtpengine's packets
                    call.leg.received_elsewhere = _packets_from(reply, tag)

    def _lost(self, reason: str) -> None:
        self.lost = True
        self._unwatch_digits()
        self.a.log("rtpengine.lost", ng_call_id=self.call_id, reason=reason[:120])
        self.engines.set.forget(self.call_id)
        for call in (self.a, self.b):
            if not call.ended.is_set():
                call.hangup()

    async def stop(self, move_back: Collection[object]) -> None:
        """The bridge ended: ``move_back`` (those still up) return to their own RTP,
        and the rtpengine call is queried and deleted."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        self._unwatch_digits()
        for call in self._moved:
            if call not in move_back:
                self._restore(call)
        if self.listeners is not None:  # the delete below ends the subscriptions
            await self.listeners.close(unsubscribe=False)
        if not self.lost:
            await self._move_back([c for c in self._moved if c in move_back])
            await self._delete()

    async def _delete(self) -> None:
        self._unwatch_digits()
        if self.listeners is not None:
            await self.listeners.close(unsubscribe=False)
        if self.engines.set.instance_for(self.call_id) is None:
            return
        try:
            reply = await self.engines.delete(self.call_id)
        except EngineError as exc:
            self.a.log("rtpengine.delete_failed", reason=str(exc)[:120])
            return
        packets, octets, errors = call_totals(reply) if "totals" in reply else self.figures
        self.a.log(
            "rtpengine.call", ng_call_id=self.call_id, packets=packets, bytes=octets, errors=errors
        )


async def hand_over(
    engines: RtpEngines | None,
    a: object,
    b: object,
    *,
    tap: Tap | None = None,
    on_dtmf: Callable[[int, str], None] | None = None,
) -> EngineBridge | None:
    """The bridge of ``a`` and ``b`` moved onto rtpengine (``--rtpengine``), when it can
    take it: two SIP parties on RTP or SDES-SRTP; with ``on_dtmf`` (``hangupOnStar``)
    only when rtpengine's DTMF log reaches us. None: the bridge stays in process (no
    instance, a party it cannot take, or a fallback, logged)."""
    if engines is None or not can_use_engine(a, b):
        return None
    if on_dtmf is not None and engines.dtmf_log is None:
        return None
    engine = EngineBridge(
        engines,
        a,  # type: ignore[arg-type]  # can_use_engine checked them
        b,  # type: ignore[arg-type]
        tap=tap,
        on_dtmf=on_dtmf,
    )
    start = asyncio.ensure_future(engine.start())
    try:
        return engine if await asyncio.shield(start) else None
    except asyncio.CancelledError:
        # The call's TwiML moved on meanwhile (a REST redirect): let the move end
        # (a re-INVITE cut short would leave a party on rtpengine unknown to us),
        # then bring both back and delete the rtpengine call before going on.
        if not start.cancelled() and await start:
            await engine.stop([a, b])
        raise
