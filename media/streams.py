"""The Media Streams protocol (Twilio-compatible, reference §6), sans-I/O.

:class:`MediaStream` writes the JSON text of every message callswitch sends to
the application (``connected``, ``start``, ``media``, ``dtmf``, ``mark``,
``stop``) and parses what a bidirectional application sends back (``media``,
``mark``, ``clear``) into events. :class:`Playback` is the queue the
application's audio waits in: 160-byte mu-law frames with marks between them,
popped one frame per 20 ms tick. :class:`StreamAudio` moves audio between a
leg's codec and the stream's mu-law, untouched when the leg is PCMU.

No sockets, no clock: the asyncio client (:mod:`media.stream_client`) feeds
these and sends what they return.
"""

from __future__ import annotations

import binascii
import json
from binascii import a2b_base64, b2a_base64
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import orjson

from media.codecs import Transcoder

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "TRACKS",
    "ClearReceived",
    "ForkTracks",
    "MarkReceived",
    "MediaReceived",
    "MediaStream",
    "Playback",
    "ProtocolError",
    "StreamAudio",
]

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz
ULAW_SILENCE = 0xFF
MAX_PLAYBACK_FRAMES = 3000  # 60 s of the application's audio waiting to play
MAX_PENDING_MARKS = 3000  # marks waiting for their audio to play (one per frame at most)
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
TRACK_NAMES = {"inbound": b"inbound", "outbound": b"outbound"}


# -- what the application sends ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaReceived:
    """``media``: mu-law audio to play to the caller."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class MarkReceived:
    """``mark``: echo ``name`` back once the audio sent before it has played."""

    name: str


@dataclass(frozen=True, slots=True)
class ClearReceived:
    """``clear``: drop the queued audio and echo the pending marks."""


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A message the application got wrong (not JSON, a field missing or of the wrong type)."""

    reason: str


StreamEvent = MediaReceived | MarkReceived | ClearReceived | ProtocolError


def _parse_mark(message: dict[str, Any]) -> StreamEvent:
    mark = message.get("mark")
    name = mark.get("name") if isinstance(mark, dict) else None
    if not isinstance(name, str):
        return ProtocolError("mark without a mark.name string")
    return MarkReceived(name)


def _parse_clear(message: dict[str, Any]) -> StreamEvent:
    return ClearReceived()


_PARSERS = {"mark": _parse_mark, "clear": _parse_clear}  # media: receive_payload


# -- the protocol ------------------------------------------------------------------------------


class MediaStream:
    """One stream's messages, numbered as Twilio numbers them (reference §6).

    ``sequenceNumber`` counts every message after ``connected`` from "1"; ``chunk``
    counts each track's media messages from "1"; ``timestamp`` is milliseconds of
    media since the stream started. By default it is 20 ms per chunk of the track;
    a caller that knows the media time (from RTP timestamps) passes it instead.
    Every number inside a message is a string. Messages are UTF-8 JSON bytes, ready
    for a text frame; ``media``, fifty a second per track, is one template filled in.
    """

    def __init__(
        self,
        account_sid: str,
        call_sid: str,
        stream_sid: str,
        custom_parameters: dict[str, str] | None = None,
        tracks: tuple[str, ...] = ("inbound",),
    ) -> None:
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.custom_parameters = dict(custom_parameters or {})
        self.tracks = tuple(tracks)
        self._sequence = 0
        self._chunks: dict[str, int] = {}
        # The sid and track are JSON-escaped once, one template per track; only the
        # numbers and the base64 vary.
        sid = json.dumps(stream_sid)[1:-1].replace("%", "%%").encode()
        self._media_templates = {
            track: (
                b'{"event":"media","sequenceNumber":"%d","media":{"track":"' + name + b'",'
                b'"chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"' + sid + b'"}'
            )
            for track, name in TRACK_NAMES.items()
        }
        self._inbound_chunk = 0  # the inbound track's chunk counter, kept apart: 50 a second
        self._inbound_template = self._media_templates["inbound"]

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def _encode(self, event: str, body: dict[str, Any]) -> bytes:
        message = {"event": event, "sequenceNumber": self._next_sequence(), **body}
        message["streamSid"] = self.stream_sid
        return json.dumps(message, separators=(",", ":")).encode()

    def connected(self) -> bytes:
        return b'{"event":"connected","protocol":"Call","version":"1.0.0"}'

    def start(self) -> bytes:
        return self._encode(
            "start",
            {
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": list(self.tracks),
                    "customParameters": self.custom_parameters,
                    "mediaFormat": dict(MEDIA_FORMAT),
                }
            },
        )

    def media(self, payload: bytes, track: str = "inbound", timestamp: int | None = None) -> bytes:
        """One media message; ``payload`` is mu-law, sent as base64."""
        if track == "inbound":
            chunk = self._inbound_chunk = self._inbound_chunk + 1
        else:
            chunk = self._chunks[track] = self._chunks.get(track, 0) + 1
        if timestamp is None:
            timestamp = (chunk - 1) * FRAME_MS
        sequence = self._sequence = self._sequence + 1
        return self._media_templates[track] % (
            sequence,
            chunk,
            timestamp,
            b2a_base64(payload, newline=False),
        )

    def inbound_media(self, payload: bytes, timestamp: int) -> bytes:
        """:meth:`media` of the ``inbound`` track at a known media time: the caller's
        audio, fifty messages a second, on the shortest path."""
        chunk = self._inbound_chunk = self._inbound_chunk + 1
        sequence = self._sequence = self._sequence + 1
        return self._inbound_template % (
            sequence,
            chunk,
            timestamp,
            b2a_base64(payload, newline=False),
        )

    def dtmf(self, digit: str) -> bytes:
        return self._encode("dtmf", {"dtmf": {"track": "inbound_track", "digit": digit}})

    def mark(self, name: str) -> bytes:
        return self._encode("mark", {"mark": {"name": name}})

    def stop(self) -> bytes:
        return self._encode(
            "stop", {"stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}
        )

    def receive(self, text: str | bytes) -> StreamEvent | None:
        """Parse one message from the application: an event, or None for one to ignore
        (an unknown ``event``, as Twilio ignores them). Never raises."""
        event = self.receive_payload(text)
        return MediaReceived(event) if isinstance(event, bytes) else event

    def receive_payload(self, text: str | bytes) -> bytes | StreamEvent | None:
        """:meth:`receive`, but a ``media`` message gives its decoded payload itself
        (bytes) rather than a :class:`MediaReceived` around it: the shortest path for
        the message a bidirectional application sends fifty times a second."""
        try:
            message = orjson.loads(text)
        except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
            return ProtocolError("not a JSON text message")
        if type(message) is not dict:  # (orjson makes plain dicts)
            return ProtocolError("not a JSON object")
        event = message.get("event")
        if event == "media":
            media = message.get("media")
            payload = media.get("payload") if type(media) is dict else None
            if type(payload) is not str:
                return ProtocolError("media without a media.payload string")
            try:
                return a2b_base64(payload, strict_mode=True)
            except (binascii.Error, ValueError):
                return ProtocolError("media.payload is not base64")
        if not isinstance(event, str):
            return ProtocolError("no event name")
        parser = _PARSERS.get(event)
        return parser(message) if parser is not None else None


# -- a one-way fork (<Start><Stream>) --------------------------------------------------------

# The TwiML/REST ``track`` value → the ``tracks`` of the ``start`` message.
TRACKS = {
    "inbound_track": ("inbound",),
    "outbound_track": ("outbound",),
    "both_tracks": ("inbound", "outbound"),
}
SIDE_TRACK = ("inbound", "outbound")  # a leg tap's side 0 and side 1


class ForkTracks:
    """The ``media`` messages of a ``<Start><Stream>`` fork (reference §6), sans-I/O.

    Fed with what a leg's tap sees, ``side`` 0 (the caller's audio: track
    ``inbound``) and 1 (what the call plays to the caller: ``outbound``), as mu-law,
    with ``now_ms``, the milliseconds of media since the fork started. Both tracks
    are interleaved on one socket in the order they arrive; each track keeps its own
    ``chunk`` counter, and its timestamps never go backwards (two frames of a track
    in one millisecond still get increasing timestamps). A side the fork does not
    stream gives None.
    """

    def __init__(self, protocol: MediaStream) -> None:
        self.protocol = protocol
        self._wanted = tuple(track in protocol.tracks for track in SIDE_TRACK)
        self._last_ms = [-1, -1]

    def wants(self, side: int) -> bool:
        return self._wanted[side]

    def media(self, side: int, payload: bytes, now_ms: int) -> bytes | None:
        if not self._wanted[side]:
            return None
        timestamp = max(int(now_ms), self._last_ms[side] + 1)
        self._last_ms[side] = timestamp
        return self.protocol.media(payload, track=SIDE_TRACK[side], timestamp=timestamp)


# -- the application's audio, waiting to play -------------------------------------------------


class _Mark:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Playback:
    """The application's audio queued for the caller, one 160-byte frame per tick.

    Media payloads of any length are joined and cut into 20 ms frames; a mark sits
    between the frames queued before and after it and is *reached* once every frame
    before it has been popped (played). A partial frame before a mark is padded with
    mu-law silence so the mark can be reached. At most ``max_frames`` wait; audio
    beyond that is dropped and counted in ``overflow``.
    """

    def __init__(self, max_frames: int = MAX_PLAYBACK_FRAMES) -> None:
        self._items: deque[bytes | _Mark] = deque()
        self._partial = bytearray()
        self._frames = 0
        self._reached: list[str] = []
        self.max_frames = max_frames
        self.overflow = 0  # bytes dropped because the queue was full
        self.dropped_frames = 0  # the same, in 20 ms frames
        self.pending_marks = 0

    @property
    def full(self) -> bool:
        """No room for another frame, or as many marks waiting as frames could."""
        return self._frames >= self.max_frames or self.pending_marks >= MAX_PENDING_MARKS

    @property
    def queued_frames(self) -> int:
        return self._frames

    def push(self, payload: bytes) -> None:
        if (
            len(payload) == FRAME_BYTES
            and not self._partial
            and self._frames < self.max_frames
            and type(payload) is bytes  # kept as it is: it must not change under us
        ):
            self._items.append(payload)  # the common message: one whole frame
            self._frames += 1
            return
        data = self._partial + payload
        whole = len(data) - len(data) % FRAME_BYTES
        for offset in range(0, whole, FRAME_BYTES):
            if self._frames >= self.max_frames:
                self.overflow += whole - offset
                self.dropped_frames += (whole - offset) // FRAME_BYTES
                break
            self._items.append(bytes(data[offset : offset + FRAME_BYTES]))
            self._frames += 1
        self._partial = data[whole:]

    def push_mark(self, name: str) -> None:
        if self._partial:
            self.push(bytes([ULAW_SILENCE]) * (FRAME_BYTES - len(self._partial)))
        self._items.append(_Mark(name))
        self.pending_marks += 1

    def pop(self) -> bytes | None:
        """The next frame to play (None when there is none); marks it passes are reached."""
        items = self._items
        if not items:
            return None
        if type(items[0]) is _Mark:
            self._take_leading_marks()
            if not items:
                return None
        frame = items.popleft()
        self._frames -= 1
        if items and type(items[0]) is _Mark:
            self._take_leading_marks()
        return frame  # type: ignore[return-value]

    @property
    def has_reached_marks(self) -> bool:
        return bool(self._reached)

    def take_marks(self) -> list[str]:
        """The names of the marks reached since the last call, in order."""
        reached, self._reached = self._reached, []
        return reached

    def clear(self) -> list[str]:
        """Drop every queued frame; return the marks reached or pending, in order."""
        pending = [item.name for item in self._items if isinstance(item, _Mark)]
        self._items.clear()
        self._partial = bytearray()
        self._frames = 0
        self.pending_marks = 0
        return self.take_marks() + pending

    def _take_leading_marks(self) -> None:
        items = self._items
        while items and isinstance(items[0], _Mark):
            self._reached.append(cast(_Mark, items.popleft()).name)
            self.pending_marks -= 1


# -- codecs ------------------------------------------------------------------------------------


class StreamAudio:
    """Between a leg's codec and the stream's mu-law 8 kHz.

    The fast path: a PCMU leg's RTP payload *is* the stream's payload, both ways, so
    nothing is decoded. Any other codec goes through a :class:`~media.codecs.Transcoder`
    per direction (they keep state between frames).
    """

    def __init__(self, leg_codec: str) -> None:
        self.leg_codec = leg_codec.upper()
        self.passthrough = self.leg_codec == "PCMU"
        self._to_stream = None if self.passthrough else Transcoder(self.leg_codec, "PCMU")
        self._to_leg = None if self.passthrough else Transcoder("PCMU", self.leg_codec)

    def to_stream(self, payload: bytes) -> bytes:
        """A leg payload as mu-law (b"" while a transcoder gathers a whole frame)."""
        return payload if self._to_stream is None else self._to_stream(payload)

    def to_leg(self, frame: bytes) -> bytes:
        """A 160-byte mu-law frame in the leg's codec."""
        return frame if self._to_leg is None else self._to_leg(frame)
