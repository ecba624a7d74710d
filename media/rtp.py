"""RTP fixed header and packet codec (RFC 3550 §5.1), plus RTP/RTCP demultiplexing."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "RTP_HEADER",
    "RTP_VERSION",
    "RtpPacket",
    "RtpParseError",
    "is_rtcp",
    "payload_span",
    "write_header",
]

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """The datagram fails the RTP header validity checks (RFC 3550 §5.1, Appendix A.1)."""


def is_rtcp(data: bytes) -> bool:
    """Tell RTCP from RTP on a muxed port (RFC 5761 §4).

    The second octet of RTCP is its packet type (SR=200 ... XR=207, with room up to 223), which
    overlaps RTP marker+payload type only for payload types 64..95; RFC 5761 forbids those for
    RTP when muxing, which is what makes this single comparison sufficient.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


def payload_span(data: bytes | bytearray) -> tuple[int, int] | None:
    """Where an RTP packet's payload starts and ends (past CSRCs and a header
    extension, before padding), or None when those lengths run past the packet.

    For a listener on a relayed packet: cheaper than :meth:`RtpPacket.parse`, which
    builds the whole packet.
    """
    size = len(data)
    if size < 12:
        return None
    first = data[0]
    if first == 0x80:  # the common packet: no CSRC, extension or padding
        return 12, size
    offset = 12 + ((first & 0x0F) << 2)
    if first & 0x10:
        if size < offset + 4:
            return None
        offset += 4 + (int.from_bytes(data[offset + 2 : offset + 4], "big") << 2)
    end = size - data[-1] if first & 0x20 else size
    if offset > end or (first & 0x20 and data[-1] == 0):
        return None
    return offset, end


def write_header(
    buf: bytearray,
    payload_type: int,
    marker: bool,
    sequence: int,
    timestamp: int,
    ssrc: int,
) -> None:
    """Pack a 12-byte RTP header (no CSRC, no extension) into the start of `buf`.

    Meant for the sender's per-packet path: the caller keeps one bytearray per stream, writes the
    payload after offset 12 and sends a memoryview of it, so no packet object is built.
    """
    RTP_HEADER.pack_into(
        buf,
        0,
        0x80,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


@dataclass(slots=True)
class RtpPacket:
    """One RTP data packet as defined by RFC 3550 §5.1 (header extension per §5.3.1).

    `padding` is the number of padding octets including the final count octet (0 = no P bit);
    `extension_profile` is None when the X bit is clear, and `extension` holds the extension
    body without its 4-octet header, so its length is a multiple of 4.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size < 12:
            raise RtpParseError(f"RTP packet too short ({size} bytes)")
        first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data, 0)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version {first >> 6}, expected 2")
        offset = 12
        csrc_count = first & 0x0F
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > size:
                raise RtpParseError("CSRC list runs past the end of the packet")
            csrc = list(struct.unpack_from(f"!{csrc_count}I", data, offset))
            offset = end
        else:
            csrc = []
        extension_profile = None
        extension = b""
        if first & 0x10:
            if offset + 4 > size:
                raise RtpParseError("header extension runs past the end of the packet")
            extension_profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            offset += 4
            end = offset + 4 * words
            if end > size:
                raise RtpParseError("header extension runs past the end of the packet")
            extension = bytes(data[offset:end])
            offset = end
        padding = 0
        end = size
        if first & 0x20:
            padding = data[-1]
            # The count includes itself, so zero is as wrong as a count beyond the payload.
            if padding == 0 or offset + padding > size:
                raise RtpParseError(f"bad RTP padding length {padding}")
            end = size - padding
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension_profile=extension_profile,
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise ValueError("RTP payload type must be 0..127")
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRC identifiers fit in an RTP header")
        if not 0 <= self.padding <= 255:
            raise ValueError("RTP padding must be 0..255 octets")
        first = 0x80 | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        parts = [
            RTP_HEADER.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence,
                self.timestamp,
                self.ssrc,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            if len(self.extension) % 4:
                raise ValueError("RTP header extension length must be a multiple of 4")
            parts.append(_EXTENSION_HEADER.pack(self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1))
            parts.append(bytes((self.padding,)))
        return b"".join(parts)
