"""Audio codecs by RTP name: G.711 (PCMU, PCMA), G.722 and Opus, plus transcoding between them.

G.711 goes through the numpy tables of :mod:`media.g711`; G.722 and Opus through FFmpeg's
``g722`` and ``libopus`` codec contexts in PyAV. Every payload is one 20 ms frame (one ptime).

Rates: an RTP *clock* rate is what timestamps count, a *sample* rate is what the codec hears.
They differ for G.722, which samples at 16 kHz but keeps the 8 kHz RTP clock for historical
reasons (RFC 3551 §4.5.2). Opus always uses a 48 kHz RTP clock and is always signalled as
``opus/48000/2`` (RFC 7587 §4.1, §7); we send mono, and a mono decoder downmixes stereo packets.

Opus and G.722 keep state from one frame to the next (predictors, the Opus range coder's
history), so each direction of each leg needs its own :class:`Encoder` and :class:`Decoder`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import av
import numpy as np

from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.resample import Resampler

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext

__all__ = [
    "PTIME_MS",
    "AlawDecoder",
    "AlawEncoder",
    "Decoder",
    "Encoder",
    "G722Decoder",
    "G722Encoder",
    "OpusDecoder",
    "OpusEncoder",
    "Transcoder",
    "UlawDecoder",
    "UlawEncoder",
    "UnsupportedCodec",
    "clock_rate",
    "decoder",
    "encoder",
    "names",
    "sample_rate",
]

PTIME_MS = 20
OPUS_BITRATE = 32000
MAX_BACKLOG_FRAMES = 3  # a transcoder never holds more than this much audio


class UnsupportedCodec(ValueError):
    """An RTP encoding name this module cannot encode or decode."""


def _frame_samples(rate: int) -> int:
    return rate * PTIME_MS // 1000


def _check_frame(samples: np.ndarray, size: int, name: str) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"{name} encoding takes int16 samples, not {samples.dtype}")
    if samples.shape != (size,):
        raise ValueError(f"{name} encodes {size} mono samples per frame, got {samples.shape}")
    return samples


# -- the interfaces --------------------------------------------------------------------------


class Decoder:
    """One direction's decoder: a payload in, int16 mono samples at ``sample_rate`` out."""

    name = ""
    sample_rate = 8000

    @property
    def frame_samples(self) -> int:
        """Samples in one 20 ms frame at ``sample_rate``."""
        return _frame_samples(self.sample_rate)

    def decode(self, payload: bytes) -> np.ndarray:
        raise NotImplementedError


class Encoder:
    """One direction's encoder: one 20 ms frame of int16 mono samples in, a payload out."""

    name = ""
    sample_rate = 8000

    @property
    def frame_samples(self) -> int:
        return _frame_samples(self.sample_rate)

    def encode(self, samples: np.ndarray) -> bytes:
        raise NotImplementedError


# -- G.711 (stateless; classes only so that every codec looks the same) ----------------------


class UlawDecoder(Decoder):
    """G.711 mu-law (RFC 3551 §4.5.14, PCMU)."""

    name = "PCMU"

    def decode(self, payload: bytes) -> np.ndarray:
        return ulaw_decode(payload)


class UlawEncoder(Encoder):
    """G.711 mu-law (RFC 3551 §4.5.14, PCMU). Takes any number of samples."""

    name = "PCMU"

    def encode(self, samples: np.ndarray) -> bytes:
        return ulaw_encode(samples)


class AlawDecoder(Decoder):
    """G.711 A-law (RFC 3551 §4.5.14, PCMA)."""

    name = "PCMA"

    def decode(self, payload: bytes) -> np.ndarray:
        return alaw_decode(payload)


class AlawEncoder(Encoder):
    """G.711 A-law (RFC 3551 §4.5.14, PCMA). Takes any number of samples."""

    name = "PCMA"

    def encode(self, samples: np.ndarray) -> bytes:
        return alaw_encode(samples)


# -- codecs through FFmpeg (PyAV) ------------------------------------------------------------


class _AvDecoder(Decoder):
    """Decoding through an FFmpeg codec context.

    A payload the codec rejects (garbage from the network) or an empty one decodes to one
    frame of silence and is counted in ``corrupt_payloads``: a peer cannot make this raise.
    """

    _codec = ""

    def __init__(self) -> None:
        # By name the stubs cannot tell it is an audio codec's context; it is.
        context = cast("AudioCodecContext", av.CodecContext.create(self._codec, "r"))
        context.sample_rate = self.sample_rate
        context.layout = "mono"
        context.open()
        self._context = context
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)
        self.corrupt_payloads = 0

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            self.corrupt_payloads += 1
            return self._silence.copy()
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.FFmpegError:
            self.corrupt_payloads += 1
            return self._silence.copy()
        if len(frames) == 1:
            return _mono_int16(frames[0])
        if not frames:  # a decoder with delay: nothing yet
            return self._silence.copy()
        return np.concatenate([_mono_int16(frame) for frame in frames])


def _mono_int16(frame: av.AudioFrame) -> np.ndarray:
    if frame.layout.nb_channels == 1 and frame.format.name == "s16":  # what we ask for
        # A view of the frame's own buffer (PyAV allocates a new frame per decode), 4x
        # cheaper than to_ndarray(); the plane may be padded, hence count.
        plane = frame.planes[0]  # a buffer, which PyAV's stubs do not declare
        view: np.ndarray = np.frombuffer(
            plane,  # type: ignore[call-overload]
            dtype=np.int16,
            count=frame.samples,
        )
        return view
    samples = frame.to_ndarray()
    if samples.dtype != np.int16:  # a float decoder: scale to 16 bits
        samples = np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)
    channels = frame.layout.nb_channels
    if channels == 1:
        return samples.reshape(-1)
    if not frame.format.is_planar:  # packed: one row, channels interleaved
        samples = samples.reshape(-1, channels).T
    result: np.ndarray = samples.mean(axis=0).astype(np.int16)
    return result


class _AvEncoder(Encoder):
    """Encoding through an FFmpeg codec context, one packet per 20 ms frame.

    One :class:`av.AudioFrame` is allocated up front and refilled for every frame: the codecs
    used here (g722, libopus) consume their input inside ``avcodec_send_frame``, so the
    frame is ours again when ``encode`` returns.

    The frame already has the context's format, layout, rate and size, so PyAV's
    ``CodecContext.encode`` would only push it through a pass-through resampling filter
    graph (about 25 us a frame). We call the send/receive step under it instead, and fall
    back to ``encode`` should a PyAV release drop that method.
    """

    _codec = ""
    _options: dict[str, str] = {}
    _bit_rate = 0

    def __init__(self) -> None:
        context = cast("AudioCodecContext", av.CodecContext.create(self._codec, "w"))
        context.sample_rate = self.sample_rate
        context.layout = "mono"
        context.format = "s16"
        if self._bit_rate:
            context.bit_rate = self._bit_rate
        context.options = dict(self._options)
        context.open()
        self._context = context
        size = self.frame_samples
        frame = av.AudioFrame(format="s16", layout="mono", samples=size)
        frame.sample_rate = self.sample_rate
        self._frame = frame
        self._pts = 0
        self._send: Callable[[av.AudioFrame], list[av.Packet[Any]]] = getattr(
            context, "_send_frame_and_recv", context.encode
        )

    def encode(self, samples: np.ndarray) -> bytes:
        size = self.frame_samples
        samples = _check_frame(samples, size, self.name)
        frame = self._frame
        frame.make_writable()  # a no-op unless the codec kept a reference after all
        plane = frame.planes[0]  # a buffer, which PyAV's stubs do not declare
        np.frombuffer(plane, dtype=np.int16)[:size] = samples  # type: ignore[call-overload]
        frame.pts = self._pts
        self._pts += size
        return b"".join([bytes(packet) for packet in self._send(frame)])


class G722Decoder(_AvDecoder):
    """G.722 at 64 kbit/s (ITU-T G.722, RFC 3551 §4.5.2): 160 octets to 320 samples at 16 kHz."""

    name = "G722"
    sample_rate = 16000
    _codec = "g722"


class G722Encoder(_AvEncoder):
    """G.722 at 64 kbit/s (ITU-T G.722, RFC 3551 §4.5.2): 320 samples at 16 kHz to 160 octets."""

    name = "G722"
    sample_rate = 16000
    _codec = "g722"


class OpusDecoder(_AvDecoder):
    """Opus (RFC 6716) as carried in RTP (RFC 7587): decodes to mono at 48 kHz.

    A packet of another duration than 20 ms (2.5 to 120 ms are legal) decodes to that many
    samples.
    """

    name = "OPUS"
    sample_rate = 48000
    _codec = "libopus"


class OpusEncoder(_AvEncoder):
    """Opus (RFC 6716, RFC 7587): 48 kHz mono, 20 ms frames, VoIP mode, ~32 kbit/s VBR, no FEC."""

    name = "OPUS"
    sample_rate = 48000
    _codec = "libopus"
    _bit_rate = OPUS_BITRATE
    _options = {"application": "voip", "frame_duration": str(PTIME_MS), "fec": "0"}


# -- the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    sample_rate: int
    clock_rate: int
    decoder: type[Decoder]
    encoder: type[Encoder]


_REGISTRY: dict[str, _Entry] = {
    "PCMU": _Entry(8000, 8000, UlawDecoder, UlawEncoder),
    "PCMA": _Entry(8000, 8000, AlawDecoder, AlawEncoder),
    "G722": _Entry(16000, 8000, G722Decoder, G722Encoder),  # RFC 3551 §4.5.2
    "OPUS": _Entry(48000, 48000, OpusDecoder, OpusEncoder),  # RFC 7587 §4.1
}


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name.upper()]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnsupportedCodec(f"no codec {name!r}: {known} only") from None


def names() -> tuple[str, ...]:
    """The RTP encoding names this module handles, upper-case."""
    return tuple(_REGISTRY)


def sample_rate(name: str) -> int:
    """The rate at which codec ``name`` samples audio (what its decoder returns)."""
    return _entry(name).sample_rate


def clock_rate(name: str) -> int:
    """The RTP timestamp clock rate of codec ``name`` (RFC 3551 Table 4, RFC 7587)."""
    return _entry(name).clock_rate


def decoder(name: str) -> Decoder:
    """A fresh decoder for codec ``name`` (case-insensitive); one per receiving direction."""
    return _entry(name).decoder()


def encoder(name: str) -> Encoder:
    """A fresh encoder for codec ``name`` (case-insensitive); one per sending direction."""
    return _entry(name).encoder()


# -- transcoding -----------------------------------------------------------------------------


class Transcoder:
    """One direction of a bridge between legs of different codecs: payload in, payload out.

    Each call decodes one ``source`` payload, resamples to the target's rate and encodes one
    20 ms ``target`` frame. When the source's packets are not 20 ms (an Opus peer may send
    10 or 60 ms), samples are queued: a call returns ``b""`` (nothing to send this tick) while
    less than a frame is queued, and the queue is capped at a few frames so latency cannot
    grow without bound. Callers forward untouched when source and target match; this still
    works then (it decodes and re-encodes).
    """

    __slots__ = ("_decoder", "_encoder", "_frame", "_pending", "_resampler", "source", "target")

    def __init__(self, source: str, target: str) -> None:
        self._decoder = decoder(source)
        self._encoder = encoder(target)
        self.source = self._decoder.name
        self.target = self._encoder.name
        self._resampler = Resampler(self._decoder.sample_rate, self._encoder.sample_rate)
        self._frame = self._encoder.frame_samples
        self._pending: np.ndarray | None = None

    def __call__(self, payload: bytes) -> bytes:
        samples = self._resampler.process(self._decoder.decode(payload))
        if self._pending is None and samples.size == self._frame:
            return self._encoder.encode(samples)  # the usual case: frames line up
        return self._queued(samples)

    def _queued(self, samples: np.ndarray) -> bytes:
        if self._pending is not None:
            samples = np.concatenate((self._pending, samples))
        limit = MAX_BACKLOG_FRAMES * self._frame
        if samples.size > limit:
            samples = samples[-limit:]
        if samples.size < self._frame:
            self._pending = samples
            return b""
        rest = samples[self._frame :]
        self._pending = rest if rest.size else None
        return self._encoder.encode(samples[: self._frame])

    @property
    def corrupt_payloads(self) -> int:
        """Source payloads that could not be decoded (and became silence)."""
        return getattr(self._decoder, "corrupt_payloads", 0)
