"""SDP session descriptions (RFC 8866, formerly RFC 4566) and audio offer/answer (RFC 3264)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "G722",
    "OPUS",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "MediaDescription",
    "SdpNegotiationError",
    "SdpParseError",
    "SessionDescription",
    "build_offer",
    "negotiate_answer",
    "remote_rtp_address",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRRORED = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
# Transports we can answer without SRTP; AVPF is answered as-is since it is a superset of AVP.
_RTP_PROTOCOLS = {"RTP/AVP", "RTP/AVPF"}
# SRTP transports keyed by a=crypto (RFC 4568), answerable only through a crypto_answer hook.
_SRTP_PROTOCOLS = {"RTP/SAVP", "RTP/SAVPF"}


class SdpParseError(ValueError):
    """The peer's SDP breaks the RFC 8866 §9 grammar (the SIP layer answers 400)."""


class SdpNegotiationError(ValueError):
    """The offer is valid but RFC 3264 §6 leaves nothing to accept (the SIP layer answers 488)."""


@dataclass(frozen=True)
class Codec:
    """An RTP payload format as named by a=rtpmap and a=fmtp (RFC 8866 §6.6, §6.15)."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    def matches(self, other: Codec) -> bool:
        """Same format regardless of payload type number (RFC 3264 §6.1)."""
        return self.name.lower() == other.name.lower() and self.clock_rate == other.clock_rate


PCMU = Codec(0, "PCMU", 8000)
PCMA = Codec(8, "PCMA", 8000)
TELEPHONE_EVENT = Codec(101, "telephone-event", 8000, fmtp="0-16")
# G.722 keeps the 8 kHz RTP clock although it samples at 16 kHz (RFC 3551 §4.5.2).
G722 = Codec(9, "G722", 8000)
# Opus is always opus/48000/2 in SDP, whatever is sent (RFC 7587 §7).
OPUS = Codec(111, "opus", 48000, channels=2, fmtp="minptime=10;useinbandfec=0")

# RFC 3551 Table 4: static audio payload types that peers may list without an rtpmap.
_STATIC_AUDIO = {
    0: PCMU,
    3: Codec(3, "GSM", 8000),
    4: Codec(4, "G723", 8000),
    8: PCMA,
    9: Codec(9, "G722", 8000),
    13: Codec(13, "CN", 8000),
    18: Codec(18, "G729", 8000),
}
# Formats that ride along with the audio codec rather than being one.
_AUXILIARY = {"telephone-event", "cn"}

_DIGITS = re.compile(r"[0-9]+")
_RTPMAP = re.compile(r"([0-9]{1,3}) ([^/ ]+)/([0-9]+)(?:/([0-9]+))?")
_FMTP = re.compile(r"([0-9]{1,3}) (.*)")
_RTCP = re.compile(r"([0-9]+)(?: (.+))?")
# RFC 8866 §5 orders session-level lines; unknown letters go last. r= lines belong to the
# t= line before them, so the two share a rank and keep their relative order.
_SESSION_ORDER = "vosiuepcbtzka"


def _port(text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) > 65535:
        raise SdpParseError(f"bad {what} port {text!r}")
    return int(text)


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpParseError(f"bad connection line c={value}")
    return parts[2]


def _address_line(address: str) -> str:
    # IPv6 literals are the only addresses that contain a colon.
    return f"IN {'IP6' if ':' in address else 'IP4'} {address}"


def _split_attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    return (name, rest) if sep else (name, None)


def _format_attribute(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


@dataclass
class MediaDescription:
    """One m= section with its rtpmap/fmtp/direction/ptime/rtcp attributes (RFC 8866 §5.14).

    `codecs` follows the order of `formats`; `attributes` keeps every other a= line, and
    `lines` other media-level lines (i=, b=, k=) as (type, value), both in their original order.
    `crypto` holds the values of the a=crypto lines (RFC 4568 §9.1), in order.
    """

    media: str = "audio"
    port: int = 0
    protocol: str = "RTP/AVP"
    formats: list[str] = field(default_factory=list)
    connection_address: str | None = None
    codecs: list[Codec] = field(default_factory=list)
    direction: str = "sendrecv"
    ptime: int | None = None
    rtcp_port: int | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    port_count: int | None = None
    rtcp_address: str | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)
    crypto: list[str] = field(default_factory=list)

    def codec(self, payload_type: int) -> Codec | None:
        for codec in self.codecs:
            if codec.payload_type == payload_type:
                return codec
        return None

    def serialize_into(self, out: list[str]) -> None:
        """Append this media section's lines to ``out`` (SessionDescription.serialize)."""
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        out.append(" ".join([f"m={self.media} {port} {self.protocol}", *self.formats]))
        out.extend(f"{kind}={value}" for kind, value in self.lines if kind == "i")
        if self.connection_address is not None:
            out.append(f"c={_address_line(self.connection_address)}")
        out.extend(f"{kind}={value}" for kind, value in self.lines if kind != "i")
        for codec in self.codecs:
            channels = f"/{codec.channels}" if codec.channels != 1 else ""
            out.append(f"a=rtpmap:{codec.payload_type} {codec.name}/{codec.clock_rate}{channels}")
            if codec.fmtp is not None:
                out.append(f"a=fmtp:{codec.payload_type} {codec.fmtp}")
        if self.ptime is not None:
            out.append(f"a=ptime:{self.ptime}")
        if self.rtcp_port is not None:
            suffix = f" {self.rtcp_address}" if self.rtcp_address else ""
            out.append(f"a=rtcp:{self.rtcp_port}{suffix}")
        out.extend(f"a=crypto:{crypto}" for crypto in self.crypto)
        out.append(f"a={self.direction}")
        out.extend(_format_attribute(name, value) for name, value in self.attributes)


@dataclass
class SessionDescription:
    """A session description (RFC 8866 §5) restricted to what SIP calls use.

    The origin is split into `username`, `session_id`, `session_version` and `address`; `timing`
    is the first t= value. Session-level a= lines stay in `attributes` and the remaining
    session-level lines (i=, u=, e=, p=, b=, r=, z=, k=, further t=) in `lines`, in order.
    A session-level direction attribute is also applied to every m= section that has none.
    """

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    address: str = "0.0.0.0"
    session_name: str = "-"
    connection_address: str | None = None
    media: list[MediaDescription] = field(default_factory=list)
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: bytes | str) -> SessionDescription:
        if isinstance(text, bytes | bytearray | memoryview):
            # surrogateescape keeps non-UTF-8 octets (legal in s=/i= under a=charset) intact.
            text = bytes(text).decode("utf-8", "surrogateescape")
        raw_lines = [line.rstrip("\r") for line in text.split("\n")]
        lines: list[tuple[str, str]] = []
        for number, line in enumerate(raw_lines, 1):
            if not line:
                continue
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpParseError(f"line {number} is not <type>=<value>: {line[:40]!r}")
            lines.append((line[0], line[2:]))
        if not lines or lines[0] != ("v", "0"):
            raise SdpParseError("SDP must start with v=0")
        if len(lines) < 2 or lines[1][0] != "o":
            raise SdpParseError("SDP must have an o= line after v=")
        session = cls()
        origin = lines[1][1].split()
        if (
            len(origin) != 6
            or not _DIGITS.fullmatch(origin[1])
            or not _DIGITS.fullmatch(origin[2])
            or origin[3] != "IN"
            or origin[4] not in ("IP4", "IP6")
        ):
            raise SdpParseError(f"bad origin line o={lines[1][1]}")
        session.username = origin[0]
        session.session_id = int(origin[1])
        session.session_version = int(origin[2])
        session.address = origin[5]
        session_direction = None
        have_timing = False
        media: MediaDescription | None = None
        media_direction: str | None = None
        rtpmaps: dict[int, Codec] = {}
        fmtps: dict[int, str] = {}
        for kind, value in lines[2:]:
            if kind in "vo":
                raise SdpParseError(f"repeated {kind}= line")
            if kind == "m":
                if media is not None:
                    _finish_media(media, media_direction or session_direction, rtpmaps, fmtps)
                media = _parse_media_line(value)
                session.media.append(media)
                media_direction = None
                rtpmaps, fmtps = {}, {}
            elif media is None:
                if kind == "s":
                    session.session_name = value
                elif kind == "c":
                    session.connection_address = _connection(value)
                elif kind == "t" and not have_timing:
                    session.timing = value
                    have_timing = True
                elif kind == "a":
                    name, attr_value = _split_attribute(value)
                    if name in DIRECTIONS and attr_value is None:
                        session_direction = name
                    session.attributes.append((name, attr_value))
                else:
                    session.lines.append((kind, value))
            elif kind == "c":
                media.connection_address = _connection(value)
            elif kind == "a":
                name, attr_value = _split_attribute(value)
                if name in DIRECTIONS and attr_value is None:
                    media_direction = name
                elif not _media_attribute(media, name, attr_value, rtpmaps, fmtps):
                    media.attributes.append((name, attr_value))
            else:
                media.lines.append((kind, value))
        if media is not None:
            _finish_media(media, media_direction or session_direction, rtpmaps, fmtps)
        return session

    def serialize(self) -> bytes:
        out = [
            "v=0",
            f"o={self.username} {self.session_id} {self.session_version} "
            f"{_address_line(self.address)}",
            f"s={self.session_name}",
        ]
        rest: list[tuple[str, str]] = [("t", self.timing), *self.lines]
        if self.connection_address is not None:
            rest.append(("c", _address_line(self.connection_address)))
        rest.extend(("a", _format_attribute(name, value)[2:]) for name, value in self.attributes)
        rest.sort(key=_session_line_rank)
        out.extend(f"{kind}={value}" for kind, value in rest)
        for media in self.media:
            media.serialize_into(out)
        out.append("")
        return "\r\n".join(out).encode("utf-8", "surrogateescape")


def _session_line_rank(line: tuple[str, str]) -> int:
    rank = _SESSION_ORDER.find("t" if line[0] == "r" else line[0])
    return len(_SESSION_ORDER) if rank < 0 else rank


def _parse_media_line(value: str) -> MediaDescription:
    parts = value.split(" ")
    if len(parts) < 3 or not parts[0] or not parts[2]:
        raise SdpParseError(f"bad media line m={value}")
    port_text, slash, count_text = parts[1].partition("/")
    media = MediaDescription(
        media=parts[0],
        port=_port(port_text, "media"),
        protocol=parts[2],
        formats=[fmt for fmt in parts[3:] if fmt],
    )
    if slash:
        if not _DIGITS.fullmatch(count_text):
            raise SdpParseError(f"bad port count in m={value}")
        media.port_count = int(count_text)
    return media


def _media_attribute(
    media: MediaDescription,
    name: str,
    value: str | None,
    rtpmaps: dict[int, Codec],
    fmtps: dict[int, str],
) -> bool:
    """Absorb the attributes we model; False means keep the line as an opaque attribute."""
    if value is None:
        return False
    if name == "rtpmap":
        match = _RTPMAP.fullmatch(value)
        if match is None:
            raise SdpParseError(f"bad rtpmap {value!r}")
        payload_type = int(match[1])
        if payload_type > 127 or str(payload_type) not in media.formats:
            return False
        rtpmaps[payload_type] = Codec(
            payload_type, match[2], int(match[3]), int(match[4]) if match[4] else 1
        )
        return True
    if name == "fmtp":
        match = _FMTP.fullmatch(value)
        if match is None or int(match[1]) > 127 or str(int(match[1])) not in media.formats:
            return False
        fmtps[int(match[1])] = match[2]
        return True
    if name == "crypto":
        media.crypto.append(value)
        return True
    if name == "ptime" and _DIGITS.fullmatch(value) and media.ptime is None:
        media.ptime = int(value)
        return True
    if name == "rtcp" and media.rtcp_port is None:
        match = _RTCP.fullmatch(value)
        if match is None:
            raise SdpParseError(f"bad rtcp attribute {value!r}")
        media.rtcp_port = _port(match[1], "RTCP")
        media.rtcp_address = match[2]
        return True
    return False


def _finish_media(
    media: MediaDescription,
    direction: str | None,
    rtpmaps: dict[int, Codec],
    fmtps: dict[int, str],
) -> None:
    media.direction = direction or "sendrecv"
    for fmt in media.formats:
        if not _DIGITS.fullmatch(fmt) or int(fmt) > 127:
            continue
        payload_type = int(fmt)
        codec = rtpmaps.get(payload_type)
        if codec is None and media.media == "audio":
            codec = _STATIC_AUDIO.get(payload_type)
        if codec is None:
            # An fmtp for a format we cannot name must not be lost.
            if payload_type in fmtps:
                media.attributes.append(("fmtp", f"{payload_type} {fmtps[payload_type]}"))
            continue
        if payload_type in fmtps:
            codec = dataclasses.replace(codec, fmtp=fmtps[payload_type])
        if codec not in media.codecs:
            media.codecs.append(codec)


def build_offer(
    address: str,
    port: int,
    codecs: list[Codec],
    session_id: int,
    ptime: int = 20,
    protocol: str = "RTP/AVP",
    crypto: Iterable[str] = (),
) -> SessionDescription:
    """An audio offer (RFC 3264 §5) listing `codecs` in our order of preference.

    For SRTP pass ``protocol="RTP/SAVP"`` and our a=crypto values (RFC 4568 §5.1.1) in `crypto`.
    """
    media = MediaDescription(
        media="audio",
        port=port,
        protocol=protocol,
        formats=[str(codec.payload_type) for codec in codecs],
        codecs=list(codecs),
        direction="sendrecv",
        ptime=ptime,
        crypto=list(crypto),
    )
    return SessionDescription(
        username="-",
        session_id=session_id,
        session_version=session_id,
        address=address,
        session_name="callswitch",
        connection_address=address,
        media=[media],
    )


def negotiate_answer(
    offer: SessionDescription,
    supported: list[Codec],
    address: str,
    port: int,
    session_id: int,
    *,
    crypto_answer: Callable[[list[str]], str | None] | None = None,
) -> tuple[SessionDescription, Codec, Codec | None]:
    """Answer an offer (RFC 3264 §6): accept the first usable audio stream, reject the rest.

    The audio codec is the first one in the offerer's order that appears in `supported`
    (matched by name and clock rate); telephone-event at the same clock rate is added when both
    sides list it. Both keep the offerer's payload type numbers, as §6.1 recommends, and carry
    our own fmtp. Returns the answer, the audio codec and the telephone-event codec or None.

    RTP/SAVP(F) streams (SDES, RFC 4568 §5.1.2) are candidates only with `crypto_answer`: it is
    called with the stream's offered a=crypto values once its codec matched, and returns our
    a=crypto value, which the answer carries, or None to pass over the stream. An RTP/AVP(F)
    stream that carries a=crypto lines (best-effort SRTP, as Asterisk and baresip offer it)
    goes to the hook too; there None means a plain RTP answer.
    """
    chosen_index = None
    audio: Codec | None = None
    events: Codec | None = None
    our_crypto: str | None = None
    for index, offered_media in enumerate(offer.media):
        secure = offered_media.protocol in _SRTP_PROTOCOLS
        if (
            offered_media.media != "audio"
            or offered_media.port == 0
            or not (
                offered_media.protocol in _RTP_PROTOCOLS or (secure and crypto_answer is not None)
            )
        ):
            continue
        audio = _first_common(offered_media.codecs, supported, exclude_auxiliary=True)
        if audio is None:
            continue
        best_effort = not secure and bool(offered_media.crypto)
        if crypto_answer is not None and (secure or best_effort):
            our_crypto = crypto_answer(offered_media.crypto)
            if our_crypto is None and secure:
                audio = None
                continue
        chosen_index = index
        events = _first_common(
            [
                codec
                for codec in offered_media.codecs
                if codec.name.lower() == "telephone-event" and codec.clock_rate == audio.clock_rate
            ],
            supported,
            exclude_auxiliary=False,
        )
        break
    if chosen_index is None or audio is None:
        raise SdpNegotiationError("no audio stream with a codec (and crypto suite) we support")

    answer_media = []
    for index, offered_media in enumerate(offer.media):
        if index != chosen_index:
            # A rejected stream keeps its m= line with port 0 (RFC 3264 §6).
            answer_media.append(
                MediaDescription(
                    media=offered_media.media,
                    port=0,
                    protocol=offered_media.protocol,
                    formats=list(offered_media.formats),
                    direction="inactive",
                )
            )
            continue
        codecs = [audio] if events is None else [audio, events]
        answer_media.append(
            MediaDescription(
                media="audio",
                port=port,
                protocol=offered_media.protocol,
                formats=[str(codec.payload_type) for codec in codecs],
                codecs=codecs,
                direction=_MIRRORED[offered_media.direction],
                ptime=20,
                crypto=[] if our_crypto is None else [our_crypto],
            )
        )
    answer = SessionDescription(
        username="-",
        session_id=session_id,
        session_version=session_id,
        address=address,
        session_name="callswitch",
        connection_address=address,
        media=answer_media,
    )
    return answer, audio, events


def _first_common(
    offered: list[Codec], supported: list[Codec], exclude_auxiliary: bool
) -> Codec | None:
    for codec in offered:
        if exclude_auxiliary and codec.name.lower() in _AUXILIARY:
            continue
        for ours in supported:
            if ours.matches(codec):
                return dataclasses.replace(ours, payload_type=codec.payload_type)
    return None


def remote_rtp_address(sdp: SessionDescription, media: MediaDescription) -> tuple[str, int]:
    """Where to send RTP for `media`: its own c= line wins over the session's (RFC 8866 §5.7)."""
    address = media.connection_address or sdp.connection_address
    if not address:
        raise SdpNegotiationError("no connection address for the media stream")
    # Multicast addresses carry /ttl (and /count); only the address itself is a destination.
    return address.split("/", 1)[0], media.port
