"""A browser's audio as a :class:`media.leg.Leg`: an aiortc peer connection.

aiortc does ICE (RFC 8445, with the STUN/TURN servers we are given), DTLS-SRTP
(RFC 5763/5764) and the codecs (Opus, PCMU). This module adapts it to the
media plane's common currency: 20 ms PCMU frames at 8 kHz. What the browser
sends arrives decoded from aiortc's receiver and is encoded to μ-law once;
what the bridge sends is queued here and handed to aiortc's sender by a track
that paces itself at 20 ms, playing silence when nothing is queued.

PCMU is offered first when the other side of the call speaks PCMU (a trunk,
most phones), Opus first otherwise. With PCMU toward the browser nothing is
transcoded: RTP payloads are taken from aiortc's receiver as they arrive and
handed to aiortc's sender as packets, so neither its decoder thread nor its
encoder runs (``_direct``). Opus is decoded by aiortc, resampled to 8 kHz and
μ-law encoded here, and the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

if TYPE_CHECKING:
    from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpReceiveParameters
    from aiortc.rtp import RtpPacket

from media.clock import MediaClock
from media.dtmf import DtmfReceiver, dtmf_packets
from media.g711 import ulaw_decode, ulaw_encode
from media.leg import Frame, Leg
from signaling.telephone_event import (
    EventFormat,
    as_event_packet,
    event_formats,
    rtp_timestamp,
    sending_format,
    with_answered_events,
    with_offered_events,
)

__all__ = ["IceServer", "SdpRejected", "WebRtcLeg", "use_host_addresses"]

log = logging.getLogger("callswitch.webrtc")

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_S = 0.020
MAX_QUEUED = 10  # 200 ms: beyond that the oldest frame goes, so delay cannot grow
INBOUND_MAX = 8  # frames from the browser waiting for the clock: 160 ms at most
SHRINK_TICKS = 50  # a queue that never fell below 2 frames for a second loses one
# A stream starts with this much audio before any telephone-event: Chromium did not
# play an event that came as a stream's first packets (its playout starts from audio).
EVENT_LEAD_IN = 15  # frames: 300 ms
# What aiortc raises for SDP it cannot use, besides its parser's plain errors.
_BAD_SDP = (
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    InvalidAccessError,
    InvalidStateError,
    OperationError,
)
_SILENCE = bytes([0xFF]) * FRAME_SAMPLES  # μ-law zero
_TIME_BASE = fractions.Fraction(1, RATE)


_host_addresses: list[str] | None = None


def use_host_addresses(addresses: list[str] | None) -> None:
    """Gather ICE host candidates on ``addresses`` only (None: every interface but
    loopback, aioice's own choice).

    A server bound to one address offers that one: bound to 127.0.0.1 (tests, a
    node behind a proxy) it offers loopback, which aioice otherwise never does, and
    it then ignores a browser's candidates outside loopback, so that no ICE check
    leaves for an address the operator did not bind.
    """
    global _host_addresses
    import aioice.ice

    original = getattr(aioice.ice, "_callswitch_original_host_addresses", None)
    if original is None:
        original = aioice.ice.get_host_addresses
        setattr(aioice.ice, "_callswitch_original_host_addresses", original)  # noqa: B010
    _host_addresses = list(addresses) if addresses else None
    _admit_loopback_only(_loopback_only())
    if _host_addresses is None:
        aioice.ice.get_host_addresses = original
    else:
        chosen = _host_addresses

        def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

        aioice.ice.get_host_addresses = host_addresses


def _admit_loopback_only(on: bool) -> None:
    """On a loopback node, datagrams (ICE checks, media) from other addresses are
    dropped: a browser's check sent from another interface gets no answer there,
    so ICE settles on its loopback candidate."""
    import aioice.ice

    protocol = aioice.ice.StunProtocol
    original = getattr(protocol, "_callswitch_original_received", None)
    if original is None:
        original = protocol.datagram_received
        setattr(protocol, "_callswitch_original_received", original)  # noqa: B010
    # aioice's class is patched in place (setattr: mypy checks no method replacement).
    if not on:
        setattr(protocol, "datagram_received", original)  # noqa: B010
        return

    def datagram_received(
        self: aioice.ice.StunProtocol, data: bytes, addr: tuple[str, int]
    ) -> None:
        host = addr[0]  # a string test per packet, not an ip_address object
        if host.startswith("127.") or host == "::1":
            original(self, data, addr)

    setattr(protocol, "datagram_received", datagram_received)  # noqa: B010


def _loopback_only() -> bool:
    import ipaddress

    chosen = _host_addresses
    return bool(chosen) and all(ipaddress.ip_address(a).is_loopback for a in chosen or [])


_CANDIDATE_ADDRESS = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) ", re.MULTILINE)


def _candidate_allowed(address: str) -> bool:
    if not _loopback_only():
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # an mDNS name (.local): not ours to resolve on a loopback node


def _scoped(sdp: str) -> str:
    """The remote SDP without candidates we would not send checks to."""
    if not _loopback_only():
        return sdp
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    kept = []
    for line in lines:
        match = _CANDIDATE_ADDRESS.match(line)
        if match is None or _candidate_allowed(match.group(1)):
            kept.append(line)
    return ("\r\n" if "\r\n" in sdp else "\n").join(kept)


_OPUS_SILENCE: bytes | None = None


def _opus_silence() -> bytes:
    """20 ms of silence in Opus, made once: what a direct Opus track sends when
    nothing is queued."""
    global _OPUS_SILENCE
    if _OPUS_SILENCE is None:
        from media.codecs import encoder

        _OPUS_SILENCE = encoder("OPUS").encode(np.zeros(960, dtype=np.int16))
    return _OPUS_SILENCE


class SdpRejected(Exception):
    """The browser's SDP cannot be used: not SDP, no audio, or no codec in common."""


@dataclass(frozen=True, slots=True)
class IceServer:
    """One entry of RTCConfiguration.iceServers (W3C WebRTC §4.2.2)."""

    urls: str
    username: str | None = None
    credential: str | None = None

    def as_json(self) -> dict[str, str]:
        entry = {"urls": self.urls}
        if self.username is not None:
            entry["username"] = self.username
            entry["credential"] = self.credential or ""
        return entry


class _Ticker:
    """One future per tick of the media clock, shared by every waiting track: a
    hundred calls cost one timer per 20 ms instead of a hundred sleeps."""

    def __init__(self, clock: MediaClock) -> None:
        self.clock = clock
        self._future: asyncio.Future[None] | None = None
        self._token: int | None = None
        self.users = 0

    def next_tick(self) -> asyncio.Future[None]:
        # A waiter cancelled (a closed leg's track) cancels the future it awaited: the
        # next waiter needs a fresh one, or its first await raises CancelledError.
        if self._future is None or self._future.done():
            self._future = asyncio.get_running_loop().create_future()
        if self._token is None:
            self._token = self.clock.subscribe(self._tick)
        return self._future

    def _tick(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._token is not None:
            self.clock.unsubscribe(self._token)
            self._token = None


_tickers: dict[int, _Ticker] = {}


def _ticker_for(clock: MediaClock) -> _Ticker:
    ticker = _tickers.get(id(clock))
    if ticker is None or ticker.clock is not clock:
        ticker = _tickers[id(clock)] = _Ticker(clock)
    ticker.users += 1
    return ticker


class _OutboundTrack(MediaStreamTrack):
    """What the bridge sends, as the audio track aiortc's sender pulls from."""

    kind = "audio"

    def __init__(self, pull: Callable[[int], bytes | None], ticker: _Ticker | None = None) -> None:
        super().__init__()
        self._pull = pull  # the next 20 ms payload for this RTP timestamp, or None
        self._ticker = ticker  # the shared media clock, else a sleep per frame
        self.direct = False
        # What a direct track sends: payloads of this clock rate, 20 ms each, and the
        # payload to send when there is nothing to say.
        self.rate = RATE
        self.silence = _SILENCE
        self._time_base = _TIME_BASE
        self._start: float | None = None
        self._frames = 0
        self._timestamp = 0

    @property
    def frames(self) -> int:
        """Frames pulled since the stream started (the first is number 0)."""
        return self._frames

    def go_direct(self, rate: int, silence: bytes) -> None:
        self.direct = True
        self.rate = rate
        self.silence = silence
        self._time_base = fractions.Fraction(1, rate)

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._frames += 1
            wait = self._start + self._frames * FRAME_S - time.monotonic()
            if wait > 0:  # when late, the frame goes at once: aiortc catches up
                if self._ticker is not None:
                    await self._ticker.next_tick()
                else:
                    await asyncio.sleep(wait)
        if self.direct:  # the payload goes out as it is: no encoder runs
            self._timestamp = self._frames * (self.rate // 50)
            payload = self._pull(self._timestamp)
            packet = av.Packet(payload if payload is not None else self.silence)
            packet.pts = self._timestamp
            packet.time_base = self._time_base
            return packet
        self._timestamp = self._frames * FRAME_SAMPLES
        payload = self._pull(self._timestamp)
        samples = ulaw_decode(payload if payload is not None else _SILENCE)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._timestamp
        frame.time_base = _TIME_BASE
        return frame


def _codec_capabilities(names: list[str]) -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    chosen = []
    for name in names:
        chosen += [c for c in codecs if c.mimeType.lower() == f"audio/{name.lower()}"]
    return chosen


_MLINE = re.compile(r"^m=audio \d+ \S+ (\d+)", re.MULTILINE)
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/", re.MULTILINE)


def negotiated_codec(answer_sdp: str) -> str:
    """The codec an SDP answer picked: its first audio payload type (RFC 3264 §6.1)."""
    line = _MLINE.search(answer_sdp)
    if line is None:
        return ""
    payload_type = line.group(1)
    names = dict(_RTPMAP.findall(answer_sdp))
    if payload_type in names:
        result: str = names[payload_type].upper()
        return result
    return {"0": "PCMU", "8": "PCMA"}.get(payload_type, "")


class WebRtcLeg(Leg):
    """One browser's audio: a peer connection with one sendrecv audio transceiver."""

    codec = "PCMU"  # what the leg speaks to the bridge, whatever the browser negotiated
    sample_rate = RATE
    kind = "webrtc"
    tappable = True

    def __init__(
        self,
        ice_servers: list[IceServer] | None = None,
        *,
        direct_pcmu: bool = True,
        direct_opus: bool = True,
        clock: MediaClock | None = None,
        only_codec: str | None = None,
    ) -> None:
        super().__init__()
        self.only_codec = only_codec  # offer/accept just this codec (a load test's clients)
        self._ticker = _ticker_for(clock) if clock is not None else None
        self._clock = clock
        self._inbound: deque[bytes] = deque(maxlen=INBOUND_MAX)
        self._ticks = 0
        self._lowest = INBOUND_MAX
        self._clock_token = clock.subscribe(self._inbound_tick) if clock is not None else None
        self.frames_dropped = 0  # received but pushed out of the inbound queue by newer ones
        self.direct_pcmu = direct_pcmu  # PCMU payloads pass untouched (see _direct)
        self.direct_opus = direct_opus  # so do Opus ones; the leg then speaks Opus
        self.codec = "PCMU"
        self.sample_rate = RATE
        self._frame_samples = FRAME_SAMPLES
        servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in ice_servers or []
        ]
        # An explicit empty list: aiortc would otherwise ask a public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self._queue: deque[bytes] = deque(maxlen=MAX_QUEUED)
        # As on RtpSession: a playback's callable for the next payload (media/player.py),
        # and a listener to both directions (media/taps.py).
        self._track = _OutboundTrack(self._next_payload, self._ticker)
        self._transceiver = self.pc.addTransceiver(self._track, direction="sendrecv")
        self.browser_codec = ""  # what the browser and we agreed on: PCMU or OPUS
        self.muted = False  # the browser muted itself: what it sends is not passed on
        self.on_connection_state: Callable[[str], None] = lambda state: None
        self._receiver: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._timestamp = 0
        self.frames_received = 0
        self.frames_sent = 0
        # RFC 4733 both ways (signaling/telephone_event.py): the formats the answer
        # names, the one we send in, packets waiting for a tick and the tick's packet
        # waiting for the transport, the RTP timestamp of the event being sent.
        self.event_formats: list[EventFormat] = []
        self._event_out: EventFormat | None = None
        self._events_in = DtmfReceiver()
        self._dtmf_out: deque[tuple[bool, int, bytes]] = deque()
        self._dtmf_ready: deque[tuple[bool, int, bytes]] = deque()
        self._event_start = 0
        self._audio_payload_type = 0
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    # -- offer/answer

    async def create_offer(self, prefer_pcmu: bool = True) -> str:
        """Our offer to the browser, every candidate gathered in it (no trickle from us)."""
        self._prefer(prefer_pcmu)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return with_offered_events(self.pc.localDescription.sdp)

    async def accept_answer(self, sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=_scoped(sdp), type="answer")
            )
        except _BAD_SDP as exc:
            raise SdpRejected(str(exc) or "bad SDP") from None
        self.browser_codec = negotiated_codec(sdp)
        if self.browser_codec not in ("PCMU", "OPUS"):
            raise SdpRejected("no audio codec in common (PCMU or Opus)")
        self._negotiated(sdp)

    async def answer_offer(self, sdp: str, prefer_pcmu: bool = True) -> str:
        """Our answer to the browser's offer."""
        self._prefer(prefer_pcmu)
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=_scoped(sdp), type="offer")
            )
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except _BAD_SDP as exc:
            raise SdpRejected(str(exc) or "bad SDP") from None
        local = with_answered_events(self.pc.localDescription.sdp, sdp)
        self.browser_codec = negotiated_codec(local)
        if self.browser_codec not in ("PCMU", "OPUS"):
            raise SdpRejected("no audio codec in common (PCMU or Opus)")
        self._negotiated(local)
        return local

    def _negotiated(self, answer_sdp: str) -> None:
        line = _MLINE.search(answer_sdp)
        payload_type = int(line.group(1)) if line else 0
        self.event_formats = event_formats(answer_sdp)
        self._event_out = sending_format(
            self.event_formats, 48000 if self.browser_codec == "OPUS" else RATE
        )
        self._audio_payload_type = payload_type
        if self.browser_codec == "PCMU" and self.direct_pcmu:
            direct = self._direct(payload_type)
        elif self.browser_codec == "OPUS" and self.direct_opus and self._direct(payload_type):
            # The leg speaks Opus to the bridge: a bridge to an Opus phone passes the
            # payloads on untouched, one to a PCMU phone transcodes in media/codecs.py.
            self.codec = "OPUS"
            self.sample_rate = 48000
            self._frame_samples = 960
            self._track.go_direct(48000, _opus_silence())
            direct = True
        else:
            direct = False
        if self.event_formats:
            self._receive_events(direct)

    def _direct(self, payload_type: int) -> bool:
        """PCMU with the browser: its RTP payloads reach ``on_frame`` as they arrive and
        ours leave as they are, so neither aiortc's decoder thread nor its encoder runs.

        This reaches into aiortc's RTCRtpReceiver (its decoder thread, its RTP handler):
        if a later aiortc renames them, the leg keeps to the decoding path.
        """
        receiver = self._transceiver.receiver
        mangled = "_RTCRtpReceiver__decoder_thread"
        if not hasattr(receiver, mangled) or not hasattr(receiver, "_handle_rtp_packet"):
            return False
        handle = receiver._handle_rtp_packet
        receive = receiver.receive

        def stop_decoder() -> None:
            thread = getattr(receiver, mangled)
            if thread is not None:
                getattr(receiver, "_RTCRtpReceiver__decoder_queue").put(None)  # noqa: B009
                setattr(receiver, mangled, None)

        async def receive_without_decoder(parameters: RTCRtpReceiveParameters) -> None:
            await receive(parameters)
            stop_decoder()

        # Reception statistics (RFC 3550 A.3/A.8), which aiortc's receiver reports
        # carry; aiortc makes the entry of an SSRC on that SSRC's first packet.
        streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})

        events = {f.payload_type for f in self.event_formats}

        async def handle_payload(packet: RtpPacket, arrival_time_ms: int) -> None:
            statistics = streams.get(packet.ssrc)
            if packet.payload_type == payload_type:
                if statistics is None:
                    await handle(packet, arrival_time_ms)  # the first packet
                else:
                    statistics.add(packet)  # no depayloading, jitter buffer or decoder
                if packet.payload:
                    self._deliver(packet.payload)
            elif packet.payload_type in events:
                if statistics is not None:  # one stream, one sequence: no false losses
                    statistics.add(packet)
                self._event_received(packet)
            else:
                await handle(packet, arrival_time_ms)

        # Replaced on this receiver only (setattr: mypy checks no method replacement).
        setattr(receiver, "receive", receive_without_decoder)  # noqa: B010
        setattr(receiver, "_handle_rtp_packet", handle_payload)  # noqa: B010
        stop_decoder()
        self._track.go_direct(RATE, _SILENCE)
        return True

    def _receive_events(self, direct: bool) -> None:
        """The browser's telephone-event packets reach ``_event_received``: aiortc's RTP
        router is told their payload types (it drops packets of types the receiver was
        not given), and they are taken before aiortc's receiver, which would drop them
        too (``_direct``'s handler takes them itself)."""
        receiver = self._transceiver.receiver
        if not hasattr(receiver, "_handle_rtp_packet") or not hasattr(receiver, "receive"):
            return
        events = {f.payload_type for f in self.event_formats}
        receive = receiver.receive

        async def receive_events_too(parameters: RTCRtpReceiveParameters) -> None:
            await receive(parameters)
            router = getattr(receiver.transport, "_rtp_router", None)
            if router is not None:
                router.register_receiver(receiver, ssrcs=[], payload_types=sorted(events))

        setattr(receiver, "receive", receive_events_too)  # noqa: B010
        if direct:
            return
        handle = receiver._handle_rtp_packet
        streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})

        async def handle_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            if packet.payload_type not in events:
                await handle(packet, arrival_time_ms)
                return
            statistics = streams.get(packet.ssrc)
            if statistics is not None:
                statistics.add(packet)
            self._event_received(packet)

        setattr(receiver, "_handle_rtp_packet", handle_packet)  # noqa: B010

    def _event_received(self, packet: RtpPacket) -> None:
        digit = self._events_in.feed(bool(packet.marker), packet.timestamp, packet.payload)
        if digit is not None and not self.closed:
            self.on_dtmf(digit)

    def _prefer(self, prefer_pcmu: bool) -> None:
        order = ["PCMU", "opus"] if prefer_pcmu else ["opus", "PCMU"]
        if self.only_codec is not None:
            order = [self.only_codec]
        self._transceiver.setCodecPreferences(_codec_capabilities(order))

    async def add_candidate(self, line: str, mid: str | None, index: int | None) -> None:
        """A trickled remote candidate; an empty line is the end of candidates."""
        if not line:
            return
        try:
            candidate = candidate_from_sdp(line.removeprefix("candidate:"))
        except (ValueError, IndexError):
            raise SdpRejected("not an ICE candidate") from None
        if not _candidate_allowed(candidate.ip):
            return
        candidate.sdpMid = mid
        candidate.sdpMLineIndex = index if index is not None else 0
        await self.pc.addIceCandidate(candidate)

    # -- media

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._receiver is None:
            self._receiver = asyncio.ensure_future(self._receive(track))

    async def _receive(self, track: MediaStreamTrack) -> None:
        resampler = None
        pending: np.ndarray = np.zeros(0, dtype=np.int16)
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while not self.closed:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):  # (an audio track's are)
                    continue
                samples: np.ndarray
                if frame.sample_rate == RATE and frame.layout.name == "mono":
                    samples = frame.to_ndarray().reshape(-1)
                else:
                    if resampler is None:
                        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
                    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
                    samples = np.concatenate(parts) if parts else np.zeros(0, np.int16)
                pending = np.concatenate([pending, samples]) if len(pending) else samples
                while len(pending) >= FRAME_SAMPLES:
                    chunk, pending = pending[:FRAME_SAMPLES], pending[FRAME_SAMPLES:]
                    self._deliver(ulaw_encode(chunk))

    def _deliver(self, payload: bytes) -> None:
        """What the browser sent, on to the consumer: at once, or with a media clock
        one frame per tick from a queue that absorbs bursts (a network's jitter, a
        stall of the loop) and gives back the delay they leave: at most INBOUND_MAX
        frames wait, and a standing backlog loses a frame each SHRINK_TICKS."""
        self.frames_received += 1
        if self._clock_token is None:
            self._hand_on(payload)
        else:
            if len(self._inbound) == INBOUND_MAX:
                self.frames_dropped += 1
            self._inbound.append(payload)

    def _inbound_tick(self) -> None:
        inbound = self._inbound
        if inbound:
            self._hand_on(inbound.popleft())
        if len(inbound) < self._lowest:
            self._lowest = len(inbound)
        self._ticks += 1
        if self._ticks >= SHRINK_TICKS:
            if self._lowest >= 2:  # a whole second with 40 ms or more of standing delay
                inbound.popleft()
                self.frames_dropped += 1
            self._ticks = 0
            self._lowest = INBOUND_MAX

    def _hand_on(self, payload: bytes) -> None:
        self._timestamp += self._frame_samples
        if self.muted:
            return
        received = Frame(self.codec, payload, self._timestamp, self._frame_samples)
        if self.tap is not None:
            self.tap(0, received)
        self.on_frame(received)

    def _next_payload(self, timestamp: int) -> bytes | None:
        payload: bytes | None
        if self._dtmf_out and self._track.frames >= EVENT_LEAD_IN:
            # This tick's packet carries an event instead (see send_dtmf).
            self._dtmf_ready.append(self._dtmf_out.popleft())
            return None
        if self._queue:
            payload = self._queue.popleft()
        elif self.source is not None:
            payload = self.source()
        else:
            return None
        if payload is not None:
            self.frames_sent += 1
            if self.tap is not None:
                self.tap(1, Frame(self.codec, payload, timestamp, self._frame_samples))
        return payload

    def send_payload(self, payload: bytes) -> None:
        """One 20 ms PCMU frame for the browser (the bridge's same-codec path)."""
        self._queue.append(payload)

    def send_frame(self, frame: Frame) -> None:
        self.send_payload(frame.payload)

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """RFC 4733 events to the browser, sent in place of audio on the next ticks.

        The packets go out as aiortc's own: while an event is under way the leg lends
        itself to the DTLS transport's ``_send_rtp`` and turns each tick's audio packet
        into the event's next packet (signaling/telephone_event.py), so SSRC, sequence
        numbers and SRTP stay aiortc's; with no event pending the transport is its own
        again and audio packets pass untouched.
        """
        event = self._event_out
        if event is None:
            raise ValueError("the browser did not negotiate telephone-event")
        self._dtmf_out.extend(dtmf_packets(digit, duration_ms, clock_rate=event.clock_rate))
        self._lend_transport(event)

    def _lend_transport(self, event: EventFormat) -> None:
        sender = self._transceiver.sender
        transport = sender.transport
        if "_send_rtp" in vars(transport):
            return  # lent already: the pending packets are picked up
        original = transport._send_rtp
        ready, pending = self._dtmf_ready, self._dtmf_out
        audio = self._audio_payload_type
        ssrc = sender._ssrc.to_bytes(4, "big")

        async def send_rtp(data: bytes) -> None:
            if ready and len(data) >= 12 and data[1] & 0x7F == audio and data[8:12] == ssrc:
                marker, offset, payload = ready.popleft()
                if marker:  # an event keeps the timestamp of its first packet
                    self._event_start = rtp_timestamp(data)
                timestamp = (self._event_start + offset) & 0xFFFFFFFF
                data = as_event_packet(data, event.payload_type, marker, timestamp, payload)
                if not ready and not pending and vars(transport).get("_send_rtp") is send_rtp:
                    del transport._send_rtp  # the last packet: per event, not per packet
            await original(data)

        setattr(transport, "_send_rtp", send_rtp)  # noqa: B010

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- lifetime

    def _on_state(self) -> None:
        state = self.pc.connectionState
        self.on_connection_state(state)
        if state in ("failed", "closed"):
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._track.stop()
        self._dtmf_out.clear()
        if self._ticker is not None:
            self._ticker.release()
        if self._clock_token is not None and self._clock is not None:
            self._clock.unsubscribe(self._clock_token)
            self._clock_token = None
            self._inbound.clear()
        if self._receiver is not None:
            self._receiver.cancel()
        self._closing = asyncio.ensure_future(self._close_pc())

    async def _close_pc(self) -> None:
        with contextlib.suppress(Exception):  # a half-set-up connection may fail to close
            await self.pc.close()
