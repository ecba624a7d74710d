"""RTCP packets and compound packets (RFC 3550 §6) and receiver statistics (Appendix A)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field

__all__ = [
    "RTCP_BYE",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_SR",
    "SDES_CNAME",
    "Bye",
    "ReceiverReport",
    "ReceptionStatistics",
    "ReportBlock",
    "RtcpPacket",
    "RtcpParseError",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "ntp_middle32",
    "ntp_timestamp",
    "parse_compound",
    "serialize_compound",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203

SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IIIIII")  # SSRC, NTP msw, NTP lsw, RTP ts, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")

# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2_208_988_800
_MAX_COUNT = 31  # the RC/SC field is 5 bits


class RtcpParseError(ValueError):
    """The datagram fails the RTCP header validity checks (RFC 3550 §6.1, Appendix A.2)."""


def ntp_timestamp(unix_time: float) -> int:
    """Convert Unix time to a 64-bit NTP timestamp (32.32 fixed point, RFC 3550 §4)."""
    ntp = unix_time + _NTP_UNIX_OFFSET
    seconds = math.floor(ntp)
    fraction = int((ntp - seconds) * 4294967296.0)
    return ((seconds << 32) | min(fraction, 0xFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as carried in LSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def _pad4(length: int) -> int:
    return -length % 4


def _header(count: int, packet_type: int, body_length: int) -> bytes:
    return _HEADER.pack(0x80 | count, packet_type, body_length // 4)


@dataclass(slots=True)
class ReportBlock:
    """A reception report block (RFC 3550 §6.4.1); `packets_lost` is signed 24-bit."""

    ssrc: int
    fraction_lost: int = 0
    packets_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def unpack(cls, data: bytes, offset: int) -> ReportBlock:
        """The 24-octet report block at ``offset`` (RFC 3550 §6.4.1)."""
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError("fraction_lost must be 0..255")
        if not -0x800000 <= self.packets_lost <= 0x7FFFFF:
            raise ValueError("packets_lost must fit in a signed 24-bit field")
        return _REPORT_BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | (self.packets_lost & 0xFFFFFF),
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _check_count(items: Sized, what: str) -> None:
    if len(items) > _MAX_COUNT:
        raise ValueError(f"at most {_MAX_COUNT} {what} fit in one RTCP packet")


def _parse_blocks(data: bytes, offset: int, end: int, count: int) -> list[ReportBlock]:
    if offset + 24 * count > end:
        raise RtcpParseError("report blocks run past the end of the packet")
    return [ReportBlock.unpack(data, offset + 24 * i) for i in range(count)]


@dataclass(slots=True)
class SenderReport:
    """SR: sender information plus reception reports (RFC 3550 §6.4.1)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)

    @classmethod
    def parse_body(cls, data: bytes, offset: int, end: int, count: int) -> SenderReport:
        """The packet body between ``offset`` and ``end`` (after the 4-octet header);
        ``count`` is the header's 5-bit count (parse_compound calls this)."""
        if offset + 24 > end:
            raise RtcpParseError("SR shorter than its sender information")
        ssrc, msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(data, offset)
        # Anything after the blocks is a profile-specific extension, which we do not use.
        reports = _parse_blocks(data, offset + 24, end, count)
        return cls(ssrc, (msw << 32) | lsw, rtp_ts, packets, octets, reports)

    def serialize(self) -> bytes:
        _check_count(self.reports, "report blocks")
        body = _SENDER_INFO.pack(
            self.ssrc,
            self.ntp_timestamp >> 32,
            self.ntp_timestamp & 0xFFFFFFFF,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        ) + b"".join(block.serialize() for block in self.reports)
        return _header(len(self.reports), RTCP_SR, len(body)) + body


@dataclass(slots=True)
class ReceiverReport:
    """RR: reception reports from a participant that is not sending (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    @classmethod
    def parse_body(cls, data: bytes, offset: int, end: int, count: int) -> ReceiverReport:
        """The packet body between ``offset`` and ``end`` (after the 4-octet header);
        ``count`` is the header's 5-bit count (parse_compound calls this)."""
        if offset + 4 > end:
            raise RtcpParseError("RR shorter than its SSRC")
        (ssrc,) = _SSRC.unpack_from(data, offset)
        return cls(ssrc, _parse_blocks(data, offset + 4, end, count))

    def serialize(self) -> bytes:
        _check_count(self.reports, "report blocks")
        body = _SSRC.pack(self.ssrc) + b"".join(block.serialize() for block in self.reports)
        return _header(len(self.reports), RTCP_RR, len(body)) + body


@dataclass(slots=True)
class SdesChunk:
    """One SDES chunk: a source and its (item type, value) pairs (RFC 3550 §6.5)."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> bytes | None:
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value
        return None


@dataclass(slots=True)
class SourceDescription:
    """SDES: source description chunks, each carrying at least a CNAME (RFC 3550 §6.5)."""

    chunks: list[SdesChunk] = field(default_factory=list)

    @classmethod
    def parse_body(cls, data: bytes, offset: int, end: int, count: int) -> SourceDescription:
        """The packet body between ``offset`` and ``end`` (after the 4-octet header);
        ``count`` is the header's 5-bit count (parse_compound calls this)."""
        chunks = []
        start = offset
        for _ in range(count):
            if offset + 4 > end:
                raise RtcpParseError("SDES chunk runs past the end of the packet")
            (ssrc,) = _SSRC.unpack_from(data, offset)
            offset += 4
            items = []
            while True:
                if offset >= end:
                    raise RtcpParseError("SDES chunk lacks its terminating null item")
                item_type = data[offset]
                if item_type == SDES_END:
                    # The null item is followed by nulls up to the next 32-bit boundary.
                    offset = min(end, offset + 1 + _pad4(offset + 1 - start))
                    break
                if offset + 2 > end or offset + 2 + data[offset + 1] > end:
                    raise RtcpParseError("SDES item runs past the end of the packet")
                length = data[offset + 1]
                items.append((item_type, bytes(data[offset + 2 : offset + 2 + length])))
                offset += 2 + length
            chunks.append(SdesChunk(ssrc, items))
        return cls(chunks)

    def serialize(self) -> bytes:
        _check_count(self.chunks, "SDES chunks")
        parts = []
        for chunk in self.chunks:
            encoded = [_SSRC.pack(chunk.ssrc)]
            for item_type, value in chunk.items:
                if not 1 <= item_type <= 255 or len(value) > 255:
                    raise ValueError("SDES item type must be 1..255 and value at most 255 bytes")
                encoded.append(bytes((item_type, len(value))) + value)
            chunk_bytes = b"".join(encoded)
            parts.append(chunk_bytes + bytes(1 + _pad4(len(chunk_bytes) + 1)))
        body = b"".join(parts)
        return _header(len(self.chunks), RTCP_SDES, len(body)) + body


@dataclass(slots=True)
class Bye:
    """BYE: the listed sources are leaving, with an optional reason (RFC 3550 §6.6)."""

    sources: list[int] = field(default_factory=list)
    reason: str | None = None

    @classmethod
    def parse_body(cls, data: bytes, offset: int, end: int, count: int) -> Bye:
        """The packet body between ``offset`` and ``end`` (after the 4-octet header);
        ``count`` is the header's 5-bit count (parse_compound calls this)."""
        if offset + 4 * count > end:
            raise RtcpParseError("BYE source list runs past the end of the packet")
        sources = list(struct.unpack_from(f"!{count}I", data, offset))
        offset += 4 * count
        reason = None
        if offset < end:
            length = data[offset]
            if offset + 1 + length > end:
                raise RtcpParseError("BYE reason runs past the end of the packet")
            reason = bytes(data[offset + 1 : offset + 1 + length]).decode("utf-8", "replace")
        return cls(sources, reason)

    def serialize(self) -> bytes:
        _check_count(self.sources, "BYE sources")
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason is not None:
            text = self.reason.encode()
            if len(text) > 255:
                raise ValueError("BYE reason must encode to at most 255 bytes")
            reason = bytes((len(text),)) + text
            body += reason + bytes(_pad4(len(reason)))
        return _header(len(self.sources), RTCP_BYE, len(body)) + body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye

_PARSERS: dict[int, Callable[[bytes, int, int, int], RtcpPacket]] = {
    RTCP_SR: SenderReport.parse_body,
    RTCP_RR: ReceiverReport.parse_body,
    RTCP_SDES: SourceDescription.parse_body,
    RTCP_BYE: Bye.parse_body,
}


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse an RTCP compound packet (RFC 3550 §6.1).

    Packet types we do not model (APP, RTPFB/PSFB feedback, XR, ...) are skipped after their
    length is checked, so a peer using extensions still gets its reports read.
    """
    size = len(data)
    if size < 4:
        raise RtcpParseError(f"RTCP packet too short ({size} bytes)")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if offset + 4 > size:
            raise RtcpParseError("trailing bytes after the last RTCP packet")
        first, packet_type, length = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtcpParseError(f"RTCP version {first >> 6}, expected 2")
        if not 192 <= packet_type <= 223:
            raise RtcpParseError(f"packet type {packet_type} is not RTCP")
        end = offset + 4 * (length + 1)
        if end > size:
            raise RtcpParseError("RTCP length field runs past the end of the datagram")
        body_end = end
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > end - offset - 4:
                raise RtcpParseError(f"bad RTCP padding length {padding}")
            body_end = end - padding
        parser = _PARSERS.get(packet_type)
        if parser is not None:
            packets.append(parser(data, offset + 4, body_end, first & 0x1F))
        offset = end
    return packets


def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes:
    return b"".join(packet.serialize() for packet in packets)


_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
# How many recent sequence numbers we remember to tell a duplicate from a late packet.
_HISTORY = 1024
_HISTORY_MASK = (1 << _HISTORY) - 1


class ReceptionStatistics:
    """Per-source receiver statistics for RTCP reports (RFC 3550 Appendix A.1, A.3, A.8).

    `update` is called once per received RTP packet with the arrival time expressed in the
    stream's RTP clock units. `min_sequential` is A.1's MIN_SEQUENTIAL: how many in-order packets
    make a new source valid (1 accepts the first packet, which suits a peer known from SDP).
    Unlike A.1, duplicates of recently seen sequence numbers are recognised and not counted as
    received, so they do not hide losses.
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_duplicates",
        "_expected_prior",
        "_max_seq",
        "_min_sequential",
        "_probation",
        "_received",
        "_received_prior",
        "_seen",
        "_valid",
        "in_order",
        "jitter",
        "next_sequence",
        "transit",
    )

    def __init__(self, min_sequential: int = 1) -> None:
        self._min_sequential = max(1, min_sequential)
        self._probation: int | None = None
        self._valid = False
        self._max_seq = 0
        self._cycles = 0
        self._base_seq = 0
        self._bad_seq = _SEQ_MOD + 1
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._seen = 0
        self._duplicates = 0
        # For a fast path that counts the common packet itself (the bridge's relay,
        # media/session.py): once the source is valid, ``next_sequence`` is the sequence
        # number that continues it in order (-1 before). A packet carrying it may be
        # counted by setting ``next_sequence`` to the one after and adding 1 to
        # ``in_order``, instead of calling :meth:`update`; the readers below fold those
        # in first, so they see what per-packet updates would have made. Its jitter (A.8)
        # such a path keeps itself, in ``transit`` and ``jitter``.
        self.next_sequence = -1
        self.in_order = 0
        self.transit: int | None = None  # the last packet's relative transit time (A.8)
        self.jitter = 0.0  # the interarrival jitter estimate in RTP timestamp units (A.8)

    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self.next_sequence = (seq + 1) & 0xFFFF
        self._bad_seq = _SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._seen = 1
        self.transit = None

    def _fold(self) -> None:
        """Count the packets a fast path counted in order, as update() would have one by
        one (each one past the highest: received, the history shifted, a wrap a cycle)."""
        count, self.in_order = self.in_order, 0
        self._received += count
        self._seen = ((self._seen << count) | ((1 << count) - 1)) & _HISTORY_MASK
        highest = self._max_seq + count
        self._cycles += highest & ~0xFFFF
        self._max_seq = highest & 0xFFFF

    def update(self, sequence: int, rtp_timestamp: int, arrival_rtp_units: int) -> bool:
        """Account for one packet; returns False if it was not counted (probation, dup, jump)."""
        if self.in_order:
            self._fold()
        seq = sequence & 0xFFFF
        if seq == (self._max_seq + 1) & 0xFFFF and self._valid:  # the next in order
            if not seq:
                self._cycles += _SEQ_MOD
            self._max_seq = seq
            self.next_sequence = (seq + 1) & 0xFFFF
            self._seen = ((self._seen << 1) | 1) & _HISTORY_MASK
        elif not self._valid:
            if self._probation is None:
                self._max_seq = (seq - 1) & 0xFFFF
                self._probation = self._min_sequential
            if seq != (self._max_seq + 1) & 0xFFFF:
                self._probation = self._min_sequential - 1
                self._max_seq = seq
                return False
            self._probation -= 1
            self._max_seq = seq
            if self._probation > 0:
                return False
            self._valid = True
            self._init_seq(seq)
        else:
            udelta = (seq - self._max_seq) & 0xFFFF
            if udelta == 0:
                self._duplicates += 1
                return False
            if udelta < _MAX_DROPOUT:
                if seq < self._max_seq:
                    self._cycles += _SEQ_MOD
                self._max_seq = seq
                self.next_sequence = (seq + 1) & 0xFFFF
                self._seen = ((self._seen << udelta) | 1) & _HISTORY_MASK
            elif udelta <= _SEQ_MOD - _MAX_MISORDER:
                # A big jump is believed only when the next packet continues from it:
                # that is a restarted sender, not a stray packet.
                if seq != self._bad_seq:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    return False
                self._init_seq(seq)
            else:
                behind = _SEQ_MOD - udelta
                if behind < _HISTORY:
                    bit = 1 << behind
                    if self._seen & bit:
                        self._duplicates += 1
                        return False
                    self._seen |= bit
        self._received += 1
        transit = (arrival_rtp_units - rtp_timestamp) & 0xFFFFFFFF
        if self.transit is not None:
            d = (transit - self.transit) & 0xFFFFFFFF
            if d & 0x80000000:
                d = 0x100000000 - d
            self.jitter += (d - self.jitter) / 16.0
        self.transit = transit
        return True

    @property
    def received(self) -> int:
        if self.in_order:
            self._fold()
        return self._received

    @property
    def duplicates(self) -> int:
        return self._duplicates

    @property
    def extended_highest_sequence(self) -> int:
        if self.in_order:
            self._fold()
        return self._cycles + self._max_seq if self._valid else 0

    @property
    def expected(self) -> int:
        if self.in_order:
            self._fold()
        if not self._valid:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3), clamped to the signed 24-bit report field."""
        return max(-0x800000, min(0x7FFFFF, self.expected - self._received))

    @property
    def fraction_lost(self) -> int:
        """Losses since the last report as a fixed-point fraction of 256 (A.3)."""
        expected_interval = self.expected - self._expected_prior
        lost_interval = expected_interval - (self._received - self._received_prior)
        if expected_interval <= 0 or lost_interval <= 0:
            return 0
        return min(255, (lost_interval << 8) // expected_interval)

    def report_block(self, ssrc_of_source: int, lsr: int = 0, dlsr: int = 0) -> ReportBlock:
        """Build the block for the next SR/RR and start a new fraction-lost interval."""
        block = ReportBlock(
            ssrc=ssrc_of_source,
            fraction_lost=self.fraction_lost,
            packets_lost=self.lost,
            highest_sequence=self.extended_highest_sequence & 0xFFFFFFFF,
            jitter=min(int(self.jitter), 0xFFFFFFFF),
            lsr=lsr,
            dlsr=dlsr,
        )
        self._expected_prior = self.expected
        self._received_prior = self._received
        return block
