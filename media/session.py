"""RTP sessions on real sockets: the SIP call's :class:`~media.leg.Leg`.

This is the only module of ``media/`` that touches sockets. Receiving parses
the fixed header in place and hands the payload to the jitter buffer (or the
RFC 4733 receiver); sending writes a header into one preallocated buffer per
session. Both run on the shared :class:`~media.clock.MediaClock` tick, so a
session costs one callback per 20 ms, not a timer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import secrets
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from media.clock import MediaClock
from media.dtmf import DtmfReceiver, dtmf_packets
from media.jitter import JitterBuffer
from media.leg import Frame, Leg, Tap
from media.ports import PortPool, PortsExhausted
from media.quality import RtpTotals
from media.rtcp import (
    Bye,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpPacket,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)
from media.rtp import RTP_HEADER, is_rtcp, payload_span, write_header
from media.sdp import Codec
from media.srtp import SrtpContext, SrtpError
from media.udp_sockets import bind_udp_pair

__all__ = ["RtpSession"]

log = logging.getLogger("callswitch.media")

RTCP_INTERVAL_TICKS = 250  # 5 s at 20 ms (RFC 3550 §6.2 minimum interval)
RTCP_INTERVAL_S = 5.0
_AFTER_FIRST_OCTET = struct.Struct(">BHII")  # of an RTP header: M+PT, sequence, ts, SSRC
_PLAIN_HEADER = struct.Struct(">HHII")  # V, P, X, CC, M, PT; sequence; timestamp; SSRC
_monotonic = time.monotonic  # arrival times (the tests stand a clock of their own in)
SDES_CNAME = 1
MAX_QUEUED_FRAMES = 3000  # 60 s of audio; beyond that the oldest is dropped
BIND_ATTEMPTS = 8
CONSENT_CHECK_S = 0.2  # how often consent taken from the peer's RTP is checked


def _not_open(packet: bytes | bytearray, address: tuple[str, int] | None) -> None:
    """RtpSession._sendto until the socket is open (nothing sends before: see _tick)."""


def _itself(session: RtpSession) -> Callable[[], RtpSession]:
    return lambda: session


def _rtcp_protocol(session: RtpSession) -> Callable[[], _RtcpProtocol]:
    return lambda: _RtcpProtocol(session)


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.session.receive_rtcp(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class RtpSession(asyncio.DatagramProtocol, Leg):
    """One RTP/RTCP port pair (RFC 3550) carrying one audio stream each way."""

    kind = "sip"
    tappable = True
    # What the relay's fast path (_RelayPath) reads and writes per packet, in slots:
    # no dictionary lookups on a big instance dict (the rest stays in __dict__).
    __slots__ = (
        "_payload_type",
        "_relay_offsets",
        "_rtp",
        "_sendto",
        "_sequence",
        "_timestamp",
        "hold",
        "octets_sent",
        "packets_sent",
        "remote",
        "remote_ssrc",
        "sample_rate",
        "ssrc",
        "stats",
        "tap",
    )

    def __init__(
        self, clock: MediaClock, pool: PortPool, port: int, *, jitter_depth: int = 3
    ) -> None:
        Leg.__init__(self)
        self._clock = clock
        self._pool = pool
        self.port = port
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._tick_token: int | None = None
        # Negotiated by configure():
        self.codec = "PCMU"
        self._payload_type = 0
        self._dtmf_payload_type = -1
        self._dtmf_clock_rate = 8000
        self.sample_rate = 8000
        self._samples = 160
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self._latch = False
        # Until the peer consents (its ACK, or RTP from its address), the negotiated
        # address waits here and ``remote`` stays None: nothing is sent (no reflection).
        self._unproven: tuple[str, int] | None = None
        self._unproven_rtcp: tuple[str, int] | None = None
        self._awaiting_consent = False
        # Consent taken from the peer's RTP is provisional until the ACK: it holds only
        # while the peer sends about as much as we do (a spoofed packet is not a peer).
        self._consent_timer: asyncio.TimerHandle | None = None
        self._consent_mark = (0, 0)
        self._rtp_consent_spent = False
        # Receiving
        self._jitter = JitterBuffer(jitter_depth)
        self._dtmf_in = DtmfReceiver()
        self.stats: ReceptionStatistics = ReceptionStatistics()
        self.remote_ssrc: int | None = None
        self.bad_packets = 0
        self.rtcp_received = 0  # RTCP compounds from the peer (the silence watchdog counts them)
        self.events_received = 0  # RFC 4733 event packets from the peer
        # Packets from the peer that another relay received for this leg (rtpengine,
        # while it carries the call): the silence watchdog counts them too.
        self.received_elsewhere = 0
        self._lsr = 0  # middle 32 bits of the last SR's NTP time, and when it came
        self._lsr_at = 0.0
        # The last report block the peer sent about us.
        self.remote_report: ReportBlock | None = None
        # Sending
        self.ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._buffer = bytearray(12 + 160)
        self._queue: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._dtmf_out: deque[tuple[bool, int, bytes]] = deque()
        self._talking = False
        self._dtmf_timestamp = 0
        # ``source`` and ``tap`` (a whole-call recording, a fork): see Leg.
        # On hold (RFC 3264 §8.4: the peer said sendonly/inactive): send nothing, keep receiving.
        self.hold = False
        # Called after a mid-call offer changed the codec, so a bridge can re-plan itself.
        self.on_reconfigured: Callable[[], None] = _no_reconfiguration
        # Bridging: packets of our codec go straight to another session, unbuffered.
        self._relay: RtpSession | None = None
        self._relay_offsets: tuple[int, int, int] | None = None  # source SSRC, seq, ts deltas
        # Frames handed to on_frame as their packets arrive (no jitter buffer), and the
        # RTP timestamp of the last one: older packets that arrive after it are dropped.
        self._on_arrival = False
        self._arrival_timestamp: int | None = None
        self.late_packets = 0
        self._rtcp_timer: asyncio.TimerHandle | None = None  # RTCP while relaying, off the clock
        self.packets_sent = 0
        self.octets_sent = 0
        self._ticks_to_rtcp = RTCP_INTERVAL_TICKS
        self.cname = f"callswitch-{os.getpid()}-{self.ssrc:08x}".encode()
        # RTP leaves through _sendto: the transport's own sendto, or SRTP's protecting one.
        self._sendto: Callable[[bytes | bytearray, tuple[str, int] | None], None] = _not_open
        self._srtp: SrtpContext | None = None

    @classmethod
    async def bind(cls, host: str, pool: PortPool, clock: MediaClock, **kwargs: Any) -> RtpSession:
        """Open an RTP/RTCP socket pair on the next free ports of ``pool``."""
        loop = asyncio.get_running_loop()
        last_error: Exception | None = None
        for _ in range(BIND_ATTEMPTS):
            port = pool.acquire()
            session = cls(clock, pool, port, **kwargs)
            try:
                rtp, rtcp = bind_udp_pair(host, port)
            except OSError as exc:  # taken by another program: try the next pair
                last_error = exc
                session.close()
                continue
            try:
                await loop.create_datagram_endpoint(_itself(session), sock=rtp)
                session._rtcp, _ = await loop.create_datagram_endpoint(
                    _rtcp_protocol(session), sock=rtcp
                )
                pool.sessions.add(session)
                return session
            except OSError as exc:
                last_error = exc
                session.close()
                for sock in (rtp, rtcp):
                    sock.close()  # a no-op for one its transport already closed
        raise PortsExhausted(f"could not bind an RTP port pair: {last_error}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        rtp = cast(asyncio.DatagramTransport, transport)  # a datagram endpoint's
        self._rtp = rtp
        if self._srtp is None:
            self._sendto = rtp.sendto

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable while the peer is not listening yet

    def configure(
        self,
        codec: Codec,
        remote: tuple[str, int],
        *,
        dtmf: Codec | None = None,
        remote_rtcp: tuple[str, int] | None = None,
        ptime: int = 20,
    ) -> None:
        """Set what offer/answer agreed on."""
        self.codec = codec.name.upper()
        self._payload_type = codec.payload_type
        self.sample_rate = codec.clock_rate
        self._samples = codec.clock_rate * ptime // 1000
        self._dtmf_payload_type = dtmf.payload_type if dtmf else -1
        # Event durations count in telephone-event's own rtpmap clock (48000 beside Opus).
        self._dtmf_clock_rate = dtmf.clock_rate if dtmf else codec.clock_rate
        # Latch onto the source of the peer's RTP only when its SDP address is not the
        # one the packets come from (a NAT): otherwise follow the SDP exactly.
        self._latch = _is_private_or_unspecified(remote[0])
        if self._awaiting_consent:
            self._unproven = remote
            self._unproven_rtcp = remote_rtcp
            return
        self.remote = remote
        self.remote_rtcp = remote_rtcp or (remote[0], remote[1] + 1)

    # -- consent: no media toward an address that has not asked for it

    def await_consent(self) -> None:
        """Send nothing (RTP or RTCP) until :meth:`consent` or RTP from the peer's address.

        For a session whose peer address comes from an unauthenticated offer (an
        inbound INVITE, a 183's early media): the address could be a forged victim's,
        and a session that streamed to it would reflect and amplify. Audio queued or
        played meanwhile waits, as it does for a session not yet configured.
        """
        if self.remote is not None:
            self._unproven, self._unproven_rtcp = self.remote, self.remote_rtcp
        self.remote = self.remote_rtcp = None
        self._awaiting_consent = True

    def consent(self) -> None:
        """The peer proved it wants our media (its ACK came): start sending."""
        self._end_provisional_consent()
        if not self._awaiting_consent:
            return
        self._awaiting_consent = False
        remote, self._unproven = self._unproven, None
        if remote is not None:
            self.remote = remote
            self.remote_rtcp = self._unproven_rtcp or (remote[0], remote[1] + 1)
        self._unproven_rtcp = None

    def _consent_by_rtp(self) -> bool:
        """RTP from the peer's address before its ACK: send, provisionally. Every
        :data:`CONSENT_CHECK_S` the peer must have sent at least half as many packets as
        we did, or the session waits for the ACK alone from then on, so one spoofed
        packet buys a forger a fifth of a second of media, not a stream."""
        if self._rtp_consent_spent:
            return False
        self._rtp_consent_spent = True
        self.consent()
        self._consent_mark = (self.stats.received + self.events_received, self.packets_sent)
        self._consent_timer = asyncio.get_running_loop().call_later(
            CONSENT_CHECK_S, self._check_provisional_consent
        )
        return True

    def _check_provisional_consent(self) -> None:
        self._consent_timer = None
        if self.closed:
            return
        received = self.stats.received + self.events_received
        sent = self.packets_sent
        if (received - self._consent_mark[0]) * 2 < sent - self._consent_mark[1]:
            self.await_consent()  # not a peer that talks back: only its ACK will do now
            return
        self._consent_mark = (received, sent)
        self._consent_timer = asyncio.get_running_loop().call_later(
            CONSENT_CHECK_S, self._check_provisional_consent
        )

    def _end_provisional_consent(self) -> None:
        if self._consent_timer is not None:
            self._consent_timer.cancel()
            self._consent_timer = None

    @property
    def payload_type(self) -> int:
        """The RTP payload type of the negotiated codec."""
        return self._payload_type

    @property
    def dtmf_payload_type(self) -> int:
        """telephone-event's payload type, -1 when not negotiated."""
        return self._dtmf_payload_type

    @property
    def awaiting_consent(self) -> bool:
        return self._awaiting_consent

    @property
    def destination(self) -> tuple[str, int] | None:
        """Where the SDP says to send: ``remote``, or the address still awaiting consent."""
        return self.remote if self.remote is not None else self._unproven

    def activity(self) -> int:
        """A number that changes whenever the peer's RTP or RTCP reaches us (the silence
        watchdog compares it between checks; nothing is counted per packet for it)."""
        stats = self.stats
        return (
            stats.received
            + stats.duplicates
            + stats.extended_highest_sequence
            + self.rtcp_received
            + self.events_received
            + self.received_elsewhere
        )

    def start(self) -> None:
        if self._tick_token is None and not self.closed:
            self._tick_token = self._clock.subscribe(self._tick)

    @property
    def srtp(self) -> SrtpContext | None:
        """The SRTP context in use (its keys change through `SrtpContext.rekey`), or None."""
        return self._srtp

    def use_srtp(self, context: SrtpContext) -> None:
        """Send SRTP/SRTCP and accept only SRTP/SRTCP (RFC 3711 §3.3, §3.4), from now on.

        The plain receive and send paths stay as they are: the protecting ones are swapped in
        for them on this instance, so a session without SRTP pays nothing for it. Called once
        (before start(), or when a mid-call offer turns SRTP on); new keys later go through
        the context's `rekey`.
        """
        self._srtp = context
        self._sendto = self._sendto_protected
        self._choose_receive_path()

    def _sendto_protected(self, packet: bytes | bytearray, address: tuple[str, int] | None) -> None:
        srtp, rtp = self._srtp, self._rtp
        if srtp is None or rtp is None:  # use_srtp() came first; sent only while open
            return
        try:
            protected = srtp.protect(bytes(packet))
        except SrtpError:
            return  # libsrtp refuses to reuse a sequence number (a relayed duplicate): drop it
        rtp.sendto(protected, address)

    def _srtp_datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        srtp = self._srtp
        if srtp is None:  # installed by use_srtp()
            return
        if len(data) < 12 or data[0] & 0xC0 != 0x80:
            self.bad_packets += 1
            return
        if is_rtcp(data):  # RFC 5761 rtcp-mux: SRTCP keeps its first 8 octets in the clear
            self.receive_rtcp(data, addr)
            return
        try:
            plain = srtp.unprotect(data)
        except SrtpError:
            self.bad_packets += 1  # forged, replayed or not ours (RFC 3711 §3.3 steps 5, 6)
            return
        RtpSession.datagram_received(self, plain, addr)

    # -- receiving (hot path: no logging, no objects beyond the payload slice)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        size = len(data)
        if size < 12 or data[0] & 0xC0 != 0x80:
            self.bad_packets += 1
            return
        if is_rtcp(data):  # RFC 5761 rtcp-mux
            self.receive_rtcp(data, addr)
            return
        first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
        offset = 12 + ((first & 0x0F) << 2)
        if first & 0x10:
            if size < offset + 4:
                self.bad_packets += 1
                return
            offset += 4 + (int.from_bytes(data[offset + 2 : offset + 4], "big") << 2)
        end = size - data[-1] if first & 0x20 else size
        if offset > end:
            self.bad_packets += 1
            return
        remote = self.remote
        if remote is None or addr[0] != remote[0]:
            if remote is None:
                remote = self._unproven
                if remote is None or (addr[0] != remote[0] and not self._latch):
                    return  # not from our peer: ignore it (RTP injection)
                if not self._consent_by_rtp():  # the peer is listening there, it seems
                    return
            if addr[0] != remote[0]:
                if not self._latch:
                    return
                self._latch_onto(addr)
        payload_type = second & 0x7F
        if payload_type == self._payload_type:
            self.remote_ssrc = ssrc
            self.stats.update(
                sequence, timestamp, int(_monotonic() * self.sample_rate) & 0xFFFFFFFF
            )
            relay = self._relay
            if relay is None:
                if self._on_arrival:
                    self._arrived(timestamp, data[offset:end])
                else:
                    self._jitter.push(sequence, timestamp, data[offset:end])
            else:
                relay.relay_packet(
                    data, relay._payload_type | (second & 0x80), ssrc, sequence, timestamp
                )
                tap = self.tap  # a fork listening while the bridge relays
                if tap is not None:
                    tap(0, Frame(self.codec, data[offset:end], timestamp, self._samples))
        elif payload_type == self._dtmf_payload_type:
            self.events_received += 1
            relay = self._relay
            if relay is not None and relay._dtmf_payload_type >= 0:
                second = relay._dtmf_payload_type | (second & 0x80)
                relay.relay_packet(data, second, ssrc, sequence, timestamp)
            digit = self._dtmf_in.feed(bool(second & 0x80), timestamp, data[offset:end])
            if digit is not None:
                self.on_dtmf(digit)

    # -- unbuffered delivery

    def deliver_on_arrival(self, on: bool) -> None:
        """Hand each packet of our codec to ``on_frame`` (and the tap) as it arrives,
        instead of through the jitter buffer on the next tick.

        For consumers that buffer for themselves, such as a Media Stream's application:
        they get the audio 40-60 ms sooner, and the session does no work per packet
        beyond the hand-over. A packet older than the last one handed over (reordered
        or duplicated in the network) is dropped and counted in ``late_packets``.
        """
        self._on_arrival = on
        self._arrival_timestamp = None
        self._jitter = JitterBuffer(self._jitter.depth)
        self._choose_receive_path()

    def _choose_receive_path(self) -> None:
        """Swap in, on this instance only, the ``datagram_received`` for what the session
        does now: SRTP's (which then takes the full path), a relay's short path (a
        ``_RelayPath``, also made the RTP transport's protocol, so the event loop calls
        it without a lookup in our instance dict), on-arrival delivery's short path, or
        the full path itself (the class's)."""
        protocol: asyncio.DatagramProtocol = self
        if self._srtp is not None:
            receive = self._srtp_datagram_received
        elif self._relay is not None:
            path = protocol = _RelayPath(self, self._relay)
            receive = path.datagram_received
        elif self._on_arrival:
            receive = self._arrival_datagram_received
        else:
            self.__dict__.pop("datagram_received", None)
            self._receive_with(self)
            return
        # mypy cannot know the bound methods agree with the class's signature.
        self.datagram_received = receive  # type: ignore[method-assign]
        self._receive_with(protocol)

    def _arrival_datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """``datagram_received`` while frames are delivered on arrival, without SRTP or a
        relay: the common packet (our codec, from our peer, a plain 12-byte header) goes
        straight to ``on_frame``; anything else takes the full path."""
        remote = self.remote
        if (
            len(data) > 12
            and data[0] == 0x80  # version 2; no padding, extension or CSRCs
            and (data[1] & 0x7F) == self._payload_type
            and not 192 <= data[1] <= 223  # (RTCP on a muxed port: RFC 5761 §4)
            and remote is not None
            and addr[0] == remote[0]
        ):
            _, sequence, timestamp, ssrc = _AFTER_FIRST_OCTET.unpack_from(data, 1)
            self.remote_ssrc = ssrc
            self.stats.update(
                sequence, timestamp, int(_monotonic() * self.sample_rate) & 0xFFFFFFFF
            )
            last = self._arrival_timestamp  # (what _arrived does, inline)
            if last is not None and (last - timestamp) & 0xFFFFFFFF < self.sample_rate << 1:
                self.late_packets += 1
                return
            self._arrival_timestamp = timestamp
            frame = Frame(self.codec, data[12:], timestamp, self._samples)
            tap = self.tap
            if tap is not None:
                tap(0, frame)
            self.on_frame(frame)
            return
        RtpSession.datagram_received(self, data, addr)

    def _arrived(self, timestamp: int, payload: bytes) -> None:
        last = self._arrival_timestamp
        # Up to two seconds behind the last is late; further is a new timeline (a restart).
        if last is not None and (last - timestamp) & 0xFFFFFFFF < self.sample_rate << 1:
            self.late_packets += 1
            return
        self._arrival_timestamp = timestamp
        frame = Frame(self.codec, payload, timestamp, self._samples)
        tap = self.tap
        if tap is not None:
            tap(0, frame)
        self.on_frame(frame)

    def _latch_onto(self, addr: tuple[str | Any, int]) -> None:
        """Send where the peer's RTP comes from: it is behind a NAT (symmetric RTP)."""
        self.remote = addr[:2]
        self.remote_rtcp = (addr[0], addr[1] + 1)
        self._latch = False

    # -- relaying (the bridge's fast path)

    def relay_to(self, other: RtpSession | None) -> None:
        """Forward the packets we receive to ``other`` as they arrive, or stop.

        Both sessions must send the same codec; the payload is not touched.
        """
        if other is not None and other.codec != self.codec:
            raise ValueError(f"cannot relay {self.codec} to a {other.codec} session")
        self._relay = other
        if other is not None:
            other._relay_offsets = None
        self._jitter = JitterBuffer(self._jitter.depth)
        self._choose_receive_path()  # without SRTP, packets take the short way
        self._pause_ticks(other is not None)

    def _receive_with(self, protocol: asyncio.DatagramProtocol) -> None:
        """Let the RTP transport hand datagrams to ``protocol`` (a relay path, or us):
        the event loop then calls the path without a lookup in our instance dict."""
        if self._rtp is not None:
            self._rtp.set_protocol(protocol)

    def _pause_ticks(self, pause: bool) -> None:
        """A relaying session has nothing to do each tick: leave the media clock and
        keep only RTCP, on a 5 s timer of its own."""
        if pause and self._tick_token is not None:
            self._clock.unsubscribe(self._tick_token)
            self._tick_token = None
            self._rtcp_timer = asyncio.get_running_loop().call_later(
                RTCP_INTERVAL_S, self._relay_rtcp
            )
        elif not pause and self._rtcp_timer is not None:
            self._rtcp_timer.cancel()
            self._rtcp_timer = None
            self.start()

    def _relay_rtcp(self) -> None:
        self._send_rtcp()
        self._rtcp_timer = asyncio.get_running_loop().call_later(RTCP_INTERVAL_S, self._relay_rtcp)

    def relay_packet(
        self, packet: bytes, second: int, ssrc: int, sequence: int, timestamp: int
    ) -> None:
        """Send an RTP packet another session received, as our own stream (RFC 3550 §7.2
        translation): ``second`` is the marker bit and our payload type; SSRC, sequence
        and timestamp are shifted into our spaces so the far end sees one continuous
        stream, gaps and all. The rest of the packet (CSRCs, extension, payload,
        padding) goes on byte for byte: one copy, one header write, one send."""
        remote = self.remote
        if remote is None or self.hold or self._rtp is None:
            return
        offsets = self._relay_offsets
        if offsets is None or offsets[0] != ssrc:
            offsets = self._relay_offsets = (
                ssrc,
                (self._sequence + 1 - sequence) & 0xFFFF,
                (self._timestamp - timestamp) & 0xFFFFFFFF,
            )
            second |= 0x80  # a new source starts a talkspurt
        self._sequence = sequence = (sequence + offsets[1]) & 0xFFFF
        self._timestamp = timestamp = (timestamp + offsets[2]) & 0xFFFFFFFF
        out = bytearray(packet)
        _AFTER_FIRST_OCTET.pack_into(out, 1, second, sequence, timestamp, self.ssrc)
        self._sendto(out, remote)
        self.packets_sent += 1
        self.octets_sent += len(packet) - 12
        tap = self.tap  # a fork hears what we relay to our peer: its outbound track
        if tap is not None and second & 0x7F == self._payload_type:
            self._tap_relayed(tap, 1, packet, timestamp)

    def _tap_relayed(self, tap: Tap, side: int, packet: bytes, timestamp: int) -> None:
        """Hand a relayed packet's payload to the tap (only while someone listens)."""
        span = payload_span(packet)
        if span is not None:
            tap(side, Frame(self.codec, packet[span[0] : span[1]], timestamp, self._samples))

    # -- sending

    def send_frame(self, frame: Frame) -> None:
        if frame.codec != self.codec:
            raise ValueError(f"frame is {frame.codec}, the session sends {self.codec}")
        self._queue.append(frame.payload)

    def send_payload(self, payload: bytes) -> None:
        """Queue one ptime's worth of payload in the session's codec."""
        self._queue.append(payload)

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        """RFC 4733 events, sent in place of audio on the next ticks."""
        if self._dtmf_payload_type < 0:
            raise ValueError("the peer did not negotiate telephone-event")
        self._dtmf_out.extend(dtmf_packets(digit, duration_ms, clock_rate=self._dtmf_clock_rate))

    def _tick(self) -> None:
        item = None if self._on_arrival else self._jitter.pop()
        tap = self.tap
        if item is not None:
            frame = Frame(self.codec, item[1], item[0], self._samples)
            if tap is not None:
                tap(0, frame)
            self.on_frame(frame)
        self._timestamp = (self._timestamp + self._samples) & 0xFFFFFFFF
        if self.remote is not None and self._rtp is not None and not self.hold:
            if self._dtmf_out:
                self._send_dtmf_packet()
            else:
                payload = (
                    self._queue.popleft()
                    if self._queue
                    else (self.source() if self.source is not None else None)
                )
                if payload is not None:  # (what _send does, inline: fifty times a second)
                    buffer = self._buffer
                    sequence = self._sequence = (self._sequence + 1) & 0xFFFF
                    second = self._payload_type if self._talking else 0x80 | self._payload_type
                    RTP_HEADER.pack_into(
                        buffer, 0, 0x80, second, sequence, self._timestamp, self.ssrc
                    )
                    buffer[12:] = payload
                    self._sendto(buffer, self.remote)
                    self.packets_sent += 1
                    self.octets_sent += len(payload)
                    self._talking = True
                    if tap is not None:
                        tap(1, Frame(self.codec, payload, self._timestamp, self._samples))
                else:
                    self._talking = False  # the next packet starts a talkspurt: marker
        elif self.hold:  # audio played while on hold is skipped, not saved for later
            if self._queue:
                self._queue.popleft()
            elif self.source is not None:
                self.source()
            self._dtmf_out.clear()
            self._talking = False
        self._ticks_to_rtcp -= 1
        if self._ticks_to_rtcp <= 0:
            self._ticks_to_rtcp = RTCP_INTERVAL_TICKS
            self._send_rtcp()

    def _send_dtmf_packet(self) -> None:
        marker, offset, payload = self._dtmf_out.popleft()
        if marker:  # an event keeps the timestamp of its first packet (RFC 4733 §2.5.1)
            self._dtmf_timestamp = self._timestamp
        self._send(
            self._dtmf_payload_type, marker, (self._dtmf_timestamp + offset) & 0xFFFFFFFF, payload
        )
        self._talking = False

    def _send(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> None:
        buffer = self._buffer
        self._sequence = (self._sequence + 1) & 0xFFFF
        write_header(buffer, payload_type, marker, self._sequence, timestamp, self.ssrc)
        buffer[12:] = payload
        self._sendto(buffer, self.remote)
        self.packets_sent += 1
        self.octets_sent += len(payload)

    # -- RTCP (RFC 3550 §6.4)

    def _send_rtcp(self) -> None:
        if self._rtcp is None or self.remote_rtcp is None:
            return
        with contextlib.suppress(SrtpError):
            self._rtcp.sendto(self._rtcp_packet(), self.remote_rtcp)

    def _rtcp_packet(self, bye: bool = False) -> bytes:
        packet = serialize_compound(self._report_packets(bye))
        return packet if self._srtp is None else self._srtp.protect_rtcp(packet)

    def _report_packets(self, bye: bool = False) -> list[RtcpPacket]:
        blocks: list[ReportBlock] = []
        if self.remote_ssrc is not None and self.stats.received:
            dlsr = int((time.monotonic() - self._lsr_at) * 65536) if self._lsr else 0
            blocks.append(self.stats.report_block(self.remote_ssrc, self._lsr, dlsr))
        report: SenderReport | ReceiverReport
        if self.packets_sent:
            report = SenderReport(
                self.ssrc,
                ntp_timestamp(time.time()),
                self._timestamp,
                self.packets_sent & 0xFFFFFFFF,
                self.octets_sent & 0xFFFFFFFF,
                blocks,
            )
        else:
            report = ReceiverReport(self.ssrc, blocks)
        packets: list[RtcpPacket] = [
            report,
            SourceDescription([SdesChunk(self.ssrc, [(SDES_CNAME, self.cname)])]),
        ]
        if bye:
            packets.append(Bye([self.ssrc], None))
        return packets

    def receive_rtcp(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """An RTCP compound from ``addr`` (the RTCP socket's, or rtcp-mux on the RTP one)."""
        peer = self.remote or self._unproven
        if peer is not None and (addr[0] == peer[0] or self._latch):
            self.rtcp_received += 1  # the peer is alive (others' RTCP keeps no call up)
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect_rtcp(bytes(data))
            except SrtpError:
                self.bad_packets += 1
                return
        try:
            packets = parse_compound(data)
        except RtcpParseError:
            self.bad_packets += 1
            return
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._lsr = ntp_middle32(packet.ntp_timestamp)
                self._lsr_at = time.monotonic()
            if isinstance(packet, (SenderReport, ReceiverReport)):
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.remote_report = block

    # -- the end

    def close(self) -> None:
        self._end_provisional_consent()
        # A receive path swapped in on this instance is a bound method of it, a cycle
        # only a full collection would break: the session goes by reference counting.
        self.datagram_received = _closed  # type: ignore[method-assign]
        if self._rtcp_timer is not None:
            self._rtcp_timer.cancel()
            self._rtcp_timer = None
        if self._tick_token is not None:
            self._clock.unsubscribe(self._tick_token)
            self._tick_token = None
        if self._rtcp is not None and self.remote_rtcp is not None and not self.closed:
            with contextlib.suppress(OSError, ValueError, SrtpError):
                self._rtcp.sendto(self._rtcp_packet(bye=True), self.remote_rtcp)
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        self._rtp = self._rtcp = None
        pool = self._pool
        if self in pool.sessions:
            pool.sessions.discard(self)
            totals = pool.ended.get(self.codec) or pool.ended.setdefault(self.codec, RtpTotals())
            totals.received += self.stats.received
            totals.lost += max(self.stats.lost, 0)
            totals.sent += self.packets_sent
        pool.release(self.port)
        Leg.close(self)


def _no_reconfiguration() -> None:
    pass


def _closed(data: bytes, addr: tuple[str | Any, int]) -> None:
    """A closed session's ``datagram_received``: what was still queued is dropped."""


class _RelayPath(asyncio.DatagramProtocol):
    """The protocol of a session's RTP transport while it relays without SRTP (the
    bridge's fast path; also the session's ``datagram_received`` then).

    The common packet (a plain 12-octet header of our codec, from our peer) is counted,
    translated and sent here in one function, exactly as the full path
    (``RtpSession.datagram_received`` then ``relay_packet``) would; anything else takes
    the full path. Reception statistics count an in-order packet through
    ``ReceptionStatistics.next_sequence`` and keep the jitter inline.
    """

    __slots__ = ("source", "stats", "target")

    def __init__(self, source: RtpSession, target: RtpSession) -> None:
        self.source = source
        self.target = target
        self.stats = source.stats

    def error_received(self, exc: Exception) -> None:
        self.source.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.source.connection_lost(exc)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        source = self.source
        remote = source.remote
        if len(data) > 12 and remote is not None and addr[0] == remote[0]:
            head, sequence, timestamp, ssrc = _PLAIN_HEADER.unpack_from(data)
            if head & 0xFF7F == 0x8000 | source._payload_type:  # V=2, no P, X, CC; our codec
                source.remote_ssrc = ssrc
                stats = self.stats
                if sequence == stats.next_sequence:  # in order: counted lazily
                    stats.next_sequence = (sequence + 1) & 0xFFFF
                    stats.in_order += 1
                    transit = (int(_monotonic() * source.sample_rate) - timestamp) & 0xFFFFFFFF
                    last = stats.transit
                    if last is not None:
                        d = (transit - last) & 0xFFFFFFFF
                        if d & 0x80000000:
                            d = 0x100000000 - d
                        stats.jitter += (d - stats.jitter) / 16.0
                    stats.transit = transit
                else:
                    stats.update(
                        sequence, timestamp, int(_monotonic() * source.sample_rate) & 0xFFFFFFFF
                    )
                target = self.target
                out = target.remote
                if out is not None and not target.hold and target._rtp is not None:
                    second = target._payload_type | (head & 0x80)
                    offsets = target._relay_offsets
                    if offsets is None or offsets[0] != ssrc:
                        offsets = target._relay_offsets = (
                            ssrc,
                            (target._sequence + 1 - sequence) & 0xFFFF,
                            (target._timestamp - timestamp) & 0xFFFFFFFF,
                        )
                        second |= 0x80  # a new source starts a talkspurt
                    target._sequence = sequence = (sequence + offsets[1]) & 0xFFFF
                    target._timestamp = relayed = (timestamp + offsets[2]) & 0xFFFFFFFF
                    packet = bytearray(data)
                    _AFTER_FIRST_OCTET.pack_into(packet, 1, second, sequence, relayed, target.ssrc)
                    target._sendto(packet, out)
                    target.packets_sent += 1
                    target.octets_sent += len(data) - 12
                    tap = target.tap  # a fork hears what we relay to our peer: its outbound track
                    if tap is not None and second & 0x7F == target._payload_type:
                        target._tap_relayed(tap, 1, data, relayed)
                tap = source.tap  # a fork hears what our peer said: its inbound track
                if tap is not None:
                    source._tap_relayed(tap, 0, data, timestamp)
                return
        RtpSession.datagram_received(source, data, addr)


@functools.lru_cache(maxsize=1024)  # a handful of peers' addresses, asked once a call
def _is_private_or_unspecified(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return (address.is_private and not address.is_loopback) or address.is_unspecified
