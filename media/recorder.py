"""Call recording to WAV (and MP3), and the silence detector behind ``<Record timeout>``.

The WAV file (16-bit PCM, RIFF/WAVE through the stdlib :mod:`wave`) is written as the call goes:
every tick's audio goes straight to disk and :mod:`wave` patches the RIFF and ``data`` sizes in
the header when the file is closed. Nothing but the current tick is held in memory, except
with ``trim_silence``, where a run of silence that may turn out to be the trailing one waits in
a spooled temporary file (in memory up to 1 MiB, then on disk) until speech resumes.

Two channels are the dual-channel recording Twilio offers: channel 0 the caller, channel 1 the
other leg, interleaved sample by sample and kept aligned tick by tick.
"""

from __future__ import annotations

import math
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media.mixer import decoder_for

__all__ = [
    "SPEECH_THRESHOLD_DBFS",
    "TRIM_THRESHOLD_DBFS",
    "Recorder",
    "RecordingInfo",
    "SilenceDetector",
    "wav_to_mp3",
]

TRIM_THRESHOLD_DBFS = -50.0  # what Twilio's trim-silence calls silence
SPEECH_THRESHOLD_DBFS = -40.0  # quiet speech is about -35 dBFS, line noise below -50

_SPOOL_IN_MEMORY = 1 << 20


def _rms_threshold(dbfs: float) -> float:
    """The RMS amplitude (reference 32768, as :func:`media.tones.level_dbfs`) of ``dbfs``."""
    result: float = 32768.0 * 10.0 ** (dbfs / 20.0)
    return result


def _mean_square(samples: np.ndarray) -> float:
    if samples.size == 0:
        return 0.0
    x = samples.astype(np.float64)
    return float(np.dot(x.reshape(-1), x.reshape(-1))) / x.size


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    duration_seconds: float
    path: Path


class Recorder:
    """Records one or two channels of 16-bit PCM to ``path_wav``.

    Feed decoded frames with :meth:`feed` (a payload in a codec) or :meth:`write` (int16
    samples), and call :meth:`tick` once per 20 ms media tick. A tick lasts at least one frame
    (``sample_rate / 50`` samples): a channel that got less this tick is padded with silence,
    so the channels stay aligned and a leg that stops sending still advances the recording.

    With one channel, samples go to disk as they are written and :meth:`tick` only pads, so a
    mono recorder works without ticks too. With two, each tick's samples wait for :meth:`tick`
    (or :meth:`close`).

    ``trim_silence`` drops leading and trailing audio below -50 dBFS (RMS per tick), as
    Twilio's ``Trim=trim-silence``; silence inside the recording is kept.
    """

    def __init__(
        self,
        path_wav: Path | str,
        *,
        channels: int = 1,
        sample_rate: int = 8000,
        trim_silence: bool = False,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError("a recording has one or two channels")
        self.path = Path(path_wav)
        self.channels = channels
        self.sample_rate = sample_rate
        self.trim_silence = trim_silence
        self.frame_samples = sample_rate // 50
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._frames_written = 0
        self._pending: list[list[np.ndarray]] = [[] for _ in range(channels)]
        self._since_tick = 0  # mono: samples written since the last tick
        self._decoders: dict[str, Callable[[bytes], np.ndarray]] = {}
        self._silence_limit = _rms_threshold(TRIM_THRESHOLD_DBFS) ** 2
        self._heard_anything = False  # trim: past the leading silence
        self._held: tempfile.SpooledTemporaryFile[bytes] | None = (
            None  # trim: possible trailing silence
        )
        self._held_frames = 0
        self.closed = False
        self.info: RecordingInfo | None = None

    # -- input

    def feed(self, codec: str, payload: bytes, channel: int = 0) -> None:
        """Decode one payload of ``codec`` (8 kHz) and append it to ``channel``."""
        decode = self._decoders.get(codec)
        if decode is None:
            decode = self._decoders[codec] = decoder_for(codec)
        self.write(decode(payload), channel)

    def write(self, samples: np.ndarray, channel: int = 0) -> None:
        """Append int16 samples to ``channel`` (0 = caller, 1 = the other leg)."""
        if self.closed:
            raise ValueError("the recording is closed")
        if not 0 <= channel < self.channels:
            raise ValueError(f"no channel {channel} in a {self.channels}-channel recording")
        samples = np.asarray(samples, dtype=np.int16).reshape(-1)
        if self.channels == 1:
            self._since_tick += samples.size
            self._emit(samples)
        else:
            self._pending[channel].append(samples)

    def tick(self) -> None:
        """End this 20 ms tick: pad what is short with silence and write it out."""
        if self.closed:
            return
        if self.channels == 1:
            if self._since_tick < self.frame_samples:
                self._emit(np.zeros(self.frame_samples - self._since_tick, dtype=np.int16))
            self._since_tick = 0
            return
        self._flush_pending(self.frame_samples)

    def _flush_pending(self, minimum: int) -> None:
        chunks = [
            np.concatenate(parts) if parts else np.zeros(0, np.int16) for parts in self._pending
        ]
        length = max(minimum, *(chunk.size for chunk in chunks))
        if length == 0:
            return
        block = np.zeros((length, self.channels), dtype=np.int16)
        for channel, chunk in enumerate(chunks):
            block[: chunk.size, channel] = chunk
        for parts in self._pending:
            parts.clear()
        self._emit(block)

    # -- output

    def _emit(self, block: np.ndarray) -> None:
        """Write interleaved samples, holding back silence that may be trimmed."""
        if block.size == 0:
            return
        frames = block.shape[0]
        data = block.tobytes()  # little-endian int16 on every platform we run on
        if not self.trim_silence:
            self._write_frames(data, frames)
            return
        silent = _mean_square(block) < self._silence_limit
        if not self._heard_anything:
            if silent:
                return  # leading silence: dropped
            self._heard_anything = True
        if silent:
            if self._held is None:
                self._held = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
            self._held.write(data)
            self._held_frames += frames
            return
        self._release_held()
        self._write_frames(data, frames)

    def _release_held(self) -> None:
        """Silence followed by sound was inside the recording after all: write it."""
        if self._held is None:
            return
        self._held.seek(0)
        while chunk := self._held.read(1 << 16):
            self._wav.writeframesraw(chunk)
        self._frames_written += self._held_frames
        self._held.close()
        self._held = None
        self._held_frames = 0

    def _write_frames(self, data: bytes, frames: int) -> None:
        self._wav.writeframesraw(data)
        self._frames_written += frames

    @property
    def duration_seconds(self) -> float:
        """What is on disk so far (without held-back silence)."""
        return self._frames_written / self.sample_rate

    def close(self) -> RecordingInfo:
        """Write out the last tick, drop trailing silence if trimming, finish the WAV header."""
        if self.closed:
            assert self.info is not None
            return self.info
        if self.channels == 2:
            self._flush_pending(0)
        if self._held is not None:  # trailing silence
            self._held.close()
            self._held = None
            self._held_frames = 0
        self._wav.close()
        self.closed = True
        self.info = RecordingInfo(self._frames_written / self.sample_rate, self.path)
        return self.info


def wav_to_mp3(wav: Path | str, mp3: Path | str, *, bit_rate: int = 32000) -> Path:
    """Encode a WAV recording as MP3 (LAME through PyAV) for a Recording's ``.mp3`` media.

    Keeps the WAV's sample rate and channels; 8 kHz is an MPEG-2.5 rate LAME supports.
    CPU work that blocks: call it through ``asyncio.to_thread`` from the event loop.
    """
    import av

    mp3 = Path(mp3)
    with av.open(str(wav)) as source, av.open(str(mp3), "w", format="mp3") as target:
        in_stream = source.streams.audio[0]
        rate = in_stream.rate
        # A plain WAV has no channel mask, so FFmpeg names its layout "1 channels": name it.
        layout = "mono" if in_stream.channels == 1 else "stereo"
        out_stream = target.add_stream("libmp3lame", rate=rate, layout=layout)
        out_stream.bit_rate = bit_rate
        resampler = av.AudioResampler(format=out_stream.format.name, layout=layout, rate=rate)
        for frame in source.decode(in_stream):
            frame.pts = None
            for converted in resampler.resample(frame):
                target.mux(out_stream.encode(converted))
        for converted in resampler.resample(None):
            target.mux(out_stream.encode(converted))
        target.mux(out_stream.encode(None))
    return mp3


class SilenceDetector:
    """Ends ``<Record>`` after ``timeout_s`` seconds of silence (TwiML ``timeout``).

    Frames are silence when their RMS is below ``threshold_dbfs``. A frame counts as speech
    only after ``min_speech_frames`` loud frames in a row, so a click does not reset the
    timer. By default the silence clock runs from the start, as Twilio's does (a caller who
    never speaks times out too; :attr:`heard_speech` tells the two apart); with
    ``wait_for_speech`` it starts only once speech has been heard.
    """

    def __init__(
        self,
        timeout_s: float,
        *,
        threshold_dbfs: float = SPEECH_THRESHOLD_DBFS,
        sample_rate: int = 8000,
        min_speech_frames: int = 2,
        wait_for_speech: bool = False,
    ) -> None:
        self.timeout_samples = math.ceil(timeout_s * sample_rate)
        self.sample_rate = sample_rate
        self.min_speech_frames = max(1, min_speech_frames)
        self.wait_for_speech = wait_for_speech
        self._limit = _rms_threshold(threshold_dbfs) ** 2
        self._loud_run = 0
        self._quiet_samples = 0
        self.heard_speech = False
        self.timed_out = False

    @property
    def silence_seconds(self) -> float:
        return self._quiet_samples / self.sample_rate

    def feed(self, samples: np.ndarray) -> bool:
        """Take one frame; True once the timeout has passed (and from then on)."""
        samples = np.asarray(samples)
        if _mean_square(samples) >= self._limit:
            self._loud_run += 1
            if self._loud_run >= self.min_speech_frames:
                self.heard_speech = True
                self._quiet_samples = 0
                return self.timed_out
            # Not speech yet, maybe a click: counts as the silence it interrupts.
        else:
            self._loud_run = 0
        if self.heard_speech or not self.wait_for_speech:
            self._quiet_samples += samples.size
        if self._quiet_samples >= self.timeout_samples:
            self.timed_out = True
        return self.timed_out

    def reset(self) -> None:
        self._loud_run = 0
        self._quiet_samples = 0
        self.heard_speech = False
        self.timed_out = False
