"""RFC 4733 telephone-events on a WebRTC leg, the parts aiortc does not do.

aiortc neither offers nor answers ``telephone-event`` and has no DTMF sender. A
browser's ``RTCDTMFSender`` works only when the SDP names the format, so the leg
adds it to the SDP text aiortc writes (aiortc ignores formats it does not know in
what the browser sends back), and sends an event by turning the audio packet of a
tick into a telephone-event packet of the same stream (same SSRC, next sequence
number; the event's payload type, marker and timestamp, RFC 4733 §2.3 and §2.5.1).

Everything here is pure: SDP text in and out, packet bytes in and out.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

__all__ = [
    "EventFormat",
    "as_event_packet",
    "event_formats",
    "rtp_timestamp",
    "sending_format",
    "with_answered_events",
    "with_offered_events",
]

# The payload types browsers pick themselves (Chromium: 126 at 8 kHz, 110 at 48 kHz),
# used in our offers when the SDP leaves them free.
_PREFERRED = {8000: 126, 48000: 110}
_EVENTS = "0-15"  # DTMF 0-9 * # A-D (RFC 4733 §3.2)
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)")
_MEDIA = re.compile(r"^m=(\S+) \S+ \S+((?: \S+)*)$")
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class EventFormat:
    """One negotiated telephone-event format: its payload type and clock rate."""

    payload_type: int
    clock_rate: int


def _lines(sdp: str) -> tuple[list[str], str]:
    newline = "\r\n" if "\r\n" in sdp else "\n"
    return sdp.split(newline), newline


def _audio_section(lines: list[str]) -> tuple[int, int] | None:
    """The first audio m-line's index and the index just past its section."""
    start = next((i for i, line in enumerate(lines) if line.startswith("m=audio ")), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    while end > start + 1 and not lines[end - 1]:  # the final CRLF's empty "line"
        end -= 1
    return start, end


def _rtpmaps(lines: list[str], start: int, end: int) -> dict[int, tuple[str, int]]:
    found = {}
    for line in lines[start:end]:
        match = _RTPMAP.match(line)
        if match:
            found[int(match.group(1))] = (match.group(2).lower(), int(match.group(3)))
    return found


def event_formats(sdp: str) -> list[EventFormat]:
    """The telephone-event formats of the first audio m-line, in its order."""
    lines, _ = _lines(sdp)
    section = _audio_section(lines)
    if section is None:
        return []
    start, end = section
    match = _MEDIA.match(lines[start])
    listed = [int(t) for t in match.group(2).split() if t.isdigit()] if match else []
    maps = _rtpmaps(lines, start, end)
    return [
        EventFormat(pt, maps[pt][1])
        for pt in listed
        if pt in maps and maps[pt][0] == "telephone-event"
    ]


def _fmtp(lines: list[str], payload_type: int) -> str | None:
    prefix = f"a=fmtp:{payload_type} "
    return next((line[len(prefix) :] for line in lines if line.startswith(prefix)), None)


def _with_formats(sdp: str, formats: list[tuple[EventFormat, str]]) -> str:
    """``sdp`` with ``formats`` (and their fmtp values) added to its first audio m-line."""
    lines, newline = _lines(sdp)
    section = _audio_section(lines)
    if section is None or not formats:
        return sdp
    start, end = section
    present = {f.payload_type for f in event_formats(sdp)}
    formats = [(f, events) for f, events in formats if f.payload_type not in present]
    if not formats:
        return sdp
    lines[start] += "".join(f" {f.payload_type}" for f, _ in formats)
    # After the section's last codec attribute (or at its end), as aiortc lays them out.
    at = end
    for i in range(start + 1, end):
        if lines[i].startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            at = i + 1
    added = []
    for fmt, events in formats:
        added.append(f"a=rtpmap:{fmt.payload_type} telephone-event/{fmt.clock_rate}")
        added.append(f"a=fmtp:{fmt.payload_type} {events}")
    lines[at:at] = added
    return newline.join(lines)


def _used_payload_types(sdp: str) -> set[int]:
    lines, _ = _lines(sdp)
    used: set[int] = set()
    for line in lines:
        match = _MEDIA.match(line)
        if match:
            used.update(int(t) for t in match.group(2).split() if t.isdigit())
    return used


def with_offered_events(offer: str) -> str:
    """Our offer with telephone-event at 8 kHz, and at 48 kHz when Opus is offered."""
    lines, _ = _lines(offer)
    section = _audio_section(lines)
    if section is None:
        return offer
    rates = [8000]
    if any(name == "opus" for name, _ in _rtpmaps(lines, *section).values()):
        rates.append(48000)
    used = _used_payload_types(offer)
    present = {f.clock_rate for f in event_formats(offer)}
    formats = []
    for rate in (r for r in rates if r not in present):
        payload_type = _PREFERRED[rate]
        if payload_type in used:
            free = [t for t in range(127, 95, -1) if t not in used]
            if not free:
                continue
            payload_type = free[0]
        used.add(payload_type)
        formats.append((EventFormat(payload_type, rate), _EVENTS))
    return _with_formats(offer, formats)


def with_answered_events(answer: str, offer: str) -> str:
    """Our answer with every telephone-event format the browser's ``offer`` has, at the
    offer's payload types (RFC 3264 §6.1): we receive on any and send on the one whose
    clock is the audio codec's."""
    lines, _ = _lines(offer)
    formats = [(f, _fmtp(lines, f.payload_type) or _EVENTS) for f in event_formats(offer)]
    return _with_formats(answer, formats)


def sending_format(formats: list[EventFormat], clock_rate: int) -> EventFormat | None:
    """The format to send events in: the one at the audio codec's clock rate (RFC 4733
    §2.1), else the first."""
    for fmt in formats:
        if fmt.clock_rate == clock_rate:
            return fmt
    return formats[0] if formats else None


def rtp_timestamp(packet: bytes) -> int:
    """The timestamp of an RTP packet (RFC 3550 §5.1)."""
    timestamp: int = _HEADER.unpack_from(packet)[3]
    return timestamp


def as_event_packet(
    packet: bytes, payload_type: int, marker: bool, timestamp: int, event: bytes
) -> bytes:
    """The RTP ``packet`` (unprotected, as a sender wrote it) turned into a
    telephone-event packet: version, sequence number, SSRC, CSRCs and header
    extensions kept; payload type, marker, timestamp and payload replaced, padding
    dropped (RFC 3550 §5.1 and §5.3.1)."""
    if len(packet) < 12:
        raise ValueError("RTP header is truncated")
    first = packet[0]
    length = 12 + 4 * (first & 0x0F)
    if first & 0x10 and len(packet) >= length + 4:  # 4 octets, then the length in words
        length += 4 + 4 * struct.unpack_from("!H", packet, length + 2)[0]
    elif first & 0x10:
        length += 4
    if length > len(packet):
        raise ValueError("RTP header is truncated")
    header = bytearray(packet[:length])
    header[0] = first & 0xDF  # no padding: the payload is ours
    header[1] = (0x80 if marker else 0) | (payload_type & 0x7F)
    struct.pack_into("!I", header, 4, timestamp & 0xFFFFFFFF)
    return bytes(header) + event
