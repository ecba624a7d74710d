"""Audio files to 16-bit mono PCM through FFmpeg (``av``): what ``<Play>`` fetches.

Twilio plays WAV (PCM, mu-law, A-law), MP3, AIFF and GSM from a URL; we take those and the
other audio containers FFmpeg reads (Ogg/Opus/Vorbis, FLAC, MP4/M4A, Matroska/WebM, AMR, ...).
The bytes come from whatever a customer's URL returned, so they are treated as hostile input:

* Only audio containers are probed (FFmpeg's ``format_whitelist``). Playlist and script
  demuxers (``hls``, ``concat``), ``sdp``/``rtsp`` (which open sockets), image, device and
  text demuxers would otherwise be picked by content sniffing and could reach files or the
  network on the server's behalf.
* Every failure, whatever FFmpeg or PyAV raises, comes out as :class:`AudioDecodeError`.
* Decoding stops after ``max_seconds`` of output, so a tiny, highly compressed file cannot
  expand without bound.

Decoding is CPU work that blocks; an event loop should call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import sys
import wave
from collections.abc import Iterable

import av
import numpy as np

__all__ = ["MAX_SECONDS", "AudioDecodeError", "decode_audio", "resample_frames", "wav_bytes"]

MAX_SECONDS = 3600.0

# Demuxer names as FFmpeg spells them (``mov`` is registered as "mov,mp4,m4a,3gp,3g2,mj2" and
# matches by any of its names). Everything else FFmpeg can sniff is refused.
_AUDIO_FORMATS = ",".join(
    [
        "wav",  # also RF64/BW64
        "w64",
        "mp3",  # also MPEG-1/2 layer I/II
        "ogg",  # Vorbis, Opus, FLAC, Speex
        "flac",
        "aiff",
        "au",
        "caf",
        "mov",
        "matroska",
        "aac",
        "amr",
        "amrnb",
        "amrwb",
        "gsm",
        "asf",
        "voc",
        "wv",
        "ape",
        "tta",
        "ac3",
        "eac3",
    ]
)


class AudioDecodeError(ValueError):
    """The bytes are not audio we can play: unknown format, no audio stream, or corrupt."""


def decode_audio(data: bytes, rate: int = 8000, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Decode a whole audio file to int16 mono samples at ``rate`` Hz.

    The first audio stream is decoded, downmixed and resampled by FFmpeg's resampler;
    output beyond ``max_seconds`` is dropped. Whatever the bytes, the only error is
    :class:`AudioDecodeError`: the input is empty, not a permitted audio container, has no
    audio stream, fails to decode, or decodes to no samples.
    """
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, not {rate}")
    if not data:
        raise AudioDecodeError("empty file")
    limit = max(0, int(max_seconds * rate))
    try:
        samples = _decode(bytes(data), rate, limit)
    except AudioDecodeError:
        raise
    except Exception as exc:  # FFmpeg's errors, and whatever PyAV raises on odd streams
        raise AudioDecodeError(f"cannot decode audio: {exc}") from exc
    if samples.size == 0:
        raise AudioDecodeError("the file holds no audio samples")
    return samples


def _decode(data: bytes, rate: int, limit: int) -> np.ndarray:
    with av.open(io.BytesIO(data), mode="r", options={"format_whitelist": _AUDIO_FORMATS}) as box:
        if not box.streams.audio:
            raise AudioDecodeError(f"no audio stream in the {box.format.name} file")
        return resample_frames(box.decode(box.streams.audio[0]), rate, max_samples=limit)


def resample_frames(
    frames: Iterable[av.AudioFrame], rate: int = 8000, *, max_samples: int | None = None
) -> np.ndarray:
    """Decoded audio frames of any format, layout and rate to int16 mono at ``rate`` Hz.

    The input may change format midway (chained Ogg streams, a decoder reconfiguring);
    frames stop being consumed once ``max_samples`` have been produced.
    """
    limit = max_samples if max_samples is not None else sys.maxsize
    # One growing buffer rather than a list of chunks joined at the end: the samples
    # are held once, not twice, at the peak of a long file.
    output = bytearray()
    total = 0

    def take(resampled: list[av.AudioFrame]) -> bool:
        """Keep resampled frames up to the limit; False once it is reached."""
        nonlocal total
        for out in resampled:
            chunk = out.to_ndarray().reshape(-1)
            if total + chunk.size >= limit:
                output.extend(chunk[: limit - total].astype("=i2", copy=False).tobytes())
                total = limit
                return False
            output.extend(chunk.astype("=i2", copy=False).tobytes())
            total += chunk.size
        return True

    resampler = None
    shape = None
    for frame in frames:
        frame_shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if frame_shape != shape:
            # An AudioResampler is fixed to its first input: drain it and start another.
            if resampler is not None and not take(resampler.resample(None)):
                break
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            shape = frame_shape
        frame.pts = None  # resampling needs no timing, and broken files have odd ones
        assert resampler is not None  # made for the first frame's shape
        if not take(resampler.resample(frame)):
            break
    else:
        if resampler is not None:
            take(resampler.resample(None))
    if not output:
        return np.zeros(0, dtype=np.int16)
    return np.frombuffer(output, dtype=np.int16)


def wav_bytes(samples: np.ndarray, rate: int = 8000) -> bytes:
    """``samples`` (int16 mono) as a 16-bit mono WAV file at ``rate`` Hz."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return out.getvalue()
