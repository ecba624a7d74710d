"""Playing audio into a leg on its media clock: TwiML ``<Say>``, ``<Play>`` and ``<Pause>``.

A leg pulls its outgoing audio from ``leg.source``, a callable asked for the next 20 ms
payload on every tick of the media clock (see :class:`media.session.RtpSession`). Playback
installs such a callable: the whole buffer is encoded once, up front, into a list of
160-byte G.711 frames, so a tick only hands out the next frame. Because pacing is the leg's
own clock, a playback finishes when its last frame has been pulled, not when a wall-clock
estimate says so.

Every coroutine here gives the leg back (``leg.source = None``) when it ends, including on
cancellation, which is how a runner barges in: it cancels the task. Playback also ends when
the leg closes, since a closed leg never pulls again. A leg that is not sending yet (an
RTP session with no remote address) holds playback until it starts.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from media.dtmf import DIGITS
from media.g711 import SILENCE_ALAW, SILENCE_ULAW, alaw_encode, ulaw_encode
from media.leg import Leg
from media.resample import resample

__all__ = [
    "DIGIT_GAP",
    "DIGIT_MS",
    "FRAME_SAMPLES",
    "PAUSE_DIGIT",
    "encode_frames",
    "play",
    "play_silence",
    "send_digits",
]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
RATE = 8000
TICK = FRAME_SAMPLES / RATE
CLOSED_POLL = 1.0  # how often a waiting playback checks whether the leg has closed

DIGIT_MS = 100  # tone length of each digit sent by send_digits
DIGIT_GAP = 0.1  # seconds of quiet between digits
PAUSE_DIGIT = "w"  # Twilio's sendDigits/<Play digits> half-second wait
PAUSE_SECONDS = 0.5

_CODECS: dict[str, tuple[Callable[[np.ndarray], bytes], int]] = {
    "PCMU": (ulaw_encode, SILENCE_ULAW),
    "PCMA": (alaw_encode, SILENCE_ALAW),
}
_PLAYABLE = "PCMU, PCMA, G722 or OPUS"


def encode_frames(samples: np.ndarray, codec: str) -> list[bytes]:
    """int16 8 kHz samples as 20 ms frames of ``codec``; the last is padded with silence.

    PCMU and PCMA come out as 160-byte frames straight from the G.711 tables. G722 and OPUS
    are resampled to the codec's rate (16 or 48 kHz) and encoded by a fresh encoder, so the
    frames form one stream from the first (play them in order, from the start).
    """
    try:
        encode, silence = _CODECS[codec.upper()]
    except KeyError:
        return _encode_wideband(samples, codec)
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    payload = encode(samples)
    payload += bytes([silence]) * (-len(payload) % FRAME_SAMPLES)
    return [payload[i : i + FRAME_SAMPLES] for i in range(0, len(payload), FRAME_SAMPLES)]


def _encode_wideband(samples: np.ndarray, codec: str) -> list[bytes]:
    from media import codecs  # FFmpeg is loaded only once a G.722 or Opus leg plays

    try:
        encoder = codecs.encoder(codec)
    except codecs.UnsupportedCodec:
        raise ValueError(f"cannot play into a {codec} leg: {_PLAYABLE} only") from None
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    wide = resample(samples, RATE, encoder.sample_rate)
    size = encoder.frame_samples
    wide = np.concatenate((wide, np.zeros(-wide.size % size, dtype=np.int16)))
    return [encoder.encode(wide[i : i + size]) for i in range(0, wide.size, size)]


_ENCODED: OrderedDict[tuple[int, str], tuple[weakref.ref[np.ndarray], list[bytes]]] = OrderedDict()
_ENCODED_ENTRIES = 64


def cached_frames(samples: np.ndarray, codec: str) -> list[bytes]:
    """``encode_frames``, remembered for the same array object: a cached prompt (speech,
    a ``<Play>`` file) that every call plays is encoded once, not once per call.

    The array is held weakly: its frames are forgotten once nobody else holds it (the
    audio cache let it go and no call plays it), so this cache is bounded by theirs."""
    key = (id(samples), codec.upper())
    hit = _ENCODED.get(key)
    if hit is not None and hit[0]() is samples:
        _ENCODED.move_to_end(key)
        return hit[1]
    frames = encode_frames(samples, codec)
    try:
        ref = weakref.ref(samples, _forgetting(key))
    except TypeError:  # not an ndarray (a list of samples): not worth remembering
        return frames
    _ENCODED[key] = (ref, frames)
    while len(_ENCODED) > _ENCODED_ENTRIES:
        _ENCODED.popitem(last=False)
    return frames


def _forgetting(key: tuple[int, str]) -> Callable[[object], None]:
    """The weakref callback that forgets ``key``'s frames."""
    return lambda _: _forget(key)


def _forget(key: tuple[int, str]) -> None:
    hit = _ENCODED.get(key)
    if hit is not None and hit[0]() is None:
        del _ENCODED[key]


class _Frames:
    """The ``leg.source`` of one playback: hands out frames, resolves ``done`` after the last."""

    __slots__ = ("_frames", "_index", "_passes_left", "done")

    def __init__(self, frames: list[bytes], passes: int, done: asyncio.Future[None]) -> None:
        self._frames = frames
        self._index = 0
        self._passes_left = passes  # 0: forever
        self.done = done

    def __call__(self) -> bytes | None:
        if self.done.done():
            return None
        frame = self._frames[self._index]
        self._index += 1
        if self._index == len(self._frames):
            self._index = 0
            if self._passes_left:
                self._passes_left -= 1
                if not self._passes_left:
                    self.done.set_result(None)
        return frame


class _Quiet:
    """The ``leg.source`` of a pause: sends nothing for ``ticks`` ticks."""

    __slots__ = ("_ticks_left", "done")

    def __init__(self, ticks: int, done: asyncio.Future[None]) -> None:
        self._ticks_left = ticks
        self.done = done

    def __call__(self) -> None:
        if self._ticks_left > 0:
            self._ticks_left -= 1
            if not self._ticks_left:
                self.done.set_result(None)
        return None


async def _run(leg: Leg, source: _Frames | _Quiet) -> None:
    leg.source = source
    try:
        while not source.done.done() and not leg.closed:
            await asyncio.wait((source.done,), timeout=CLOSED_POLL)
    finally:
        if leg.source is source:  # another playback may have taken over meanwhile
            leg.source = None


def _check_leg(leg: Leg) -> None:
    """The leg's clock must be its codec's RTP clock, which the frames are paced for."""
    rate = leg.sample_rate
    name = leg.codec.upper()
    if name in _CODECS:
        expected = RATE
    else:
        from media import codecs

        try:
            expected = codecs.clock_rate(name)
        except codecs.UnsupportedCodec:
            raise ValueError(f"cannot play into a {leg.codec} leg: {_PLAYABLE} only") from None
    if rate != expected:
        raise ValueError(f"cannot play into a {leg.codec} leg clocked at {rate} Hz, not {expected}")


async def play(leg: Leg, samples: np.ndarray, *, loop: int = 1) -> None:
    """Play int16 8 kHz mono ``samples`` into ``leg``, ``loop`` times (0: until cancelled).

    Returns once the leg has pulled the last frame (or has closed). Empty audio returns at
    once. Raises ValueError for a codec other than PCMU/PCMA or a negative ``loop``.
    """
    if loop < 0:
        raise ValueError(f"loop must be 0 (forever) or more, not {loop}")
    _check_leg(leg)
    frames = cached_frames(samples, leg.codec)
    if not frames:
        return
    await _run(leg, _Frames(frames, loop, asyncio.get_running_loop().create_future()))


async def play_silence(leg: Leg, seconds: float) -> None:
    """Send nothing for ``seconds``, counted in the leg's 20 ms ticks (``<Pause>``)."""
    ticks = round(seconds / TICK)
    if ticks <= 0:
        return
    await _run(leg, _Quiet(ticks, asyncio.get_running_loop().create_future()))


async def send_digits(
    leg: Leg, digits: str, *, duration_ms: int = DIGIT_MS, gap: float = DIGIT_GAP
) -> None:
    """Send ``digits`` as DTMF through ``leg.send_dtmf``, one after the other.

    ``0-9 * # A-D`` are key presses, each followed by a wait of its duration plus ``gap``
    (so the next starts after it, and the call returns once the last is out); ``w`` waits
    half a second, as in Twilio's ``sendDigits``. The whole string is checked first:
    ValueError and nothing sent if any other character is in it. Stops early if the leg
    closes.
    """
    bad = sorted({d for d in digits if d != PAUSE_DIGIT and d.upper() not in DIGITS})
    if bad:
        raise ValueError(f"not DTMF digits: {''.join(bad)!r}")
    for digit in digits:
        if leg.closed:
            return
        if digit == PAUSE_DIGIT:
            await asyncio.sleep(PAUSE_SECONDS)
        else:
            leg.send_dtmf(digit.upper(), duration_ms)
            await asyncio.sleep(duration_ms / 1000 + gap)
