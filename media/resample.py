"""Sample-rate conversion of int16 mono audio between 8, 16 and 48 kHz.

Each conversion is an integer factor (x2, x3, x6 up or down), done as a polyphase FIR filter:
one Kaiser-windowed sinc low-pass, cut off just below the lower rate's Nyquist frequency, that
removes the images of upsampling and the aliases of downsampling. A :class:`Resampler` keeps
the last input samples the filter reaches back to, so a stream fed in 20 ms chunks comes out
the same as if it had been converted in one piece: no clicks at the chunk boundaries.

The filter is linear-phase, so its only side effect is a fixed delay of about 1.5 ms. Per chunk
the work is one small matrix product; there is no Python loop over samples.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RATES", "Resampler", "resample"]

RATES = (8000, 16000, 48000)

_TAPS_PER_PHASE = 24  # filter length in input samples (upsampling) or output samples (down)
_KAISER_BETA = 7.0  # about 70 dB stopband attenuation
_CUTOFF = 0.95  # -6 dB point, as a fraction of the lower rate's Nyquist frequency


def _lowpass(factor: int) -> np.ndarray:
    """Windowed-sinc low-pass at the high rate, for a conversion by ``factor``; unity DC gain."""
    length = _TAPS_PER_PHASE * factor
    n = np.arange(length) - (length - 1) / 2
    cutoff = _CUTOFF / (2 * factor)  # cycles per high-rate sample
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(length, _KAISER_BETA)
    result: np.ndarray = taps / taps.sum()
    return result


def _check_rate(rate: int) -> None:
    if rate not in RATES:
        raise ValueError(f"cannot resample at {rate} Hz: {', '.join(map(str, RATES))} only")


def _as_int16(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"resampling takes int16 samples, not {samples.dtype}")
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    return samples


_LOWEST = np.float32(-32768)
_HIGHEST = np.float32(32767)


def _to_int16(values: np.ndarray) -> np.ndarray:
    # In place, with float32 bounds: this runs on every chunk and must stay cheap.
    np.rint(values, out=values)
    np.minimum(values, _HIGHEST, out=values)
    np.maximum(values, _LOWEST, out=values)
    return values.astype(np.int16)


class Resampler:
    """Converts a stream of int16 mono chunks from ``source_rate`` to ``target_rate``.

    Both rates are among :data:`RATES`. One instance per stream: it holds the filter's memory.
    Upsampling by L turns n samples into n*L. Downsampling by M turns n samples into n // M
    and keeps the remainder for the next chunk, so chunks need not be multiples of M.
    """

    __slots__ = ("_down", "_history", "_kernel", "_up", "source_rate", "target_rate")

    def __init__(self, source_rate: int, target_rate: int) -> None:
        _check_rate(source_rate)
        _check_rate(target_rate)
        self.source_rate = source_rate
        self.target_rate = target_rate
        self._up = self._down = 1
        if target_rate > source_rate:
            self._up = target_rate // source_rate
            taps = _lowpass(self._up) * self._up  # each phase sees 1/L of the taps: gain L
            # Row i of the kernel weighs input x[n - (K-1-i)]; column p makes output n*L + p.
            phases = taps.reshape(_TAPS_PER_PHASE, self._up)
            self._kernel = np.ascontiguousarray(phases[::-1]).astype(np.float32)
            history = _TAPS_PER_PHASE - 1
        elif target_rate < source_rate:
            self._down = source_rate // target_rate
            taps = _lowpass(self._down)
            self._kernel = np.ascontiguousarray(taps[::-1]).astype(np.float32)
            history = taps.size - 1
        else:
            self._kernel = np.ones(1, dtype=np.float32)
            history = 0
        self._history = np.zeros(history, dtype=np.float32)

    @property
    def delay(self) -> float:
        """The filter's group delay in seconds."""
        taps = self._kernel.size
        return (taps - 1) / 2 / max(self.source_rate, self.target_rate)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The next converted chunk for the next input chunk (int16 in, int16 out)."""
        samples = _as_int16(samples)
        if self._up == self._down:
            return samples
        extended = np.concatenate((self._history, samples), dtype=np.float32)
        if self._up > 1:
            return self._upsample(extended, samples.size)
        return self._downsample(extended)

    __call__ = process

    def _upsample(self, extended: np.ndarray, count: int) -> np.ndarray:
        taps = self._kernel.shape[0]
        # Row n is extended[n : n + taps]: a strided view, no copy (as_strided is 10x slower).
        windows = np.ndarray((count, taps), np.float32, extended, 0, (4, 4))
        out = np.dot(windows, self._kernel)
        self._history = extended[count:]
        return _to_int16(out.reshape(-1))

    def _downsample(self, extended: np.ndarray) -> np.ndarray:
        taps = self._kernel.size
        step = self._down
        count = (extended.size - taps + 1) // step if extended.size >= taps else 0
        # Row j is extended[j * step : j * step + taps].
        windows = np.ndarray((count, taps), np.float32, extended, 0, (4 * step, 4))
        out = np.dot(windows, self._kernel)
        self._history = extended[count * step :]
        return _to_int16(out)

    def reset(self) -> None:
        """Forget the stream so far (a new talkspurt from a different source)."""
        self._history[:] = 0


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """``samples`` converted in one piece (a fresh :class:`Resampler`, so delayed ~1.5 ms).

    The output is ``len(samples) * target_rate // source_rate`` samples long.
    """
    return Resampler(source_rate, target_rate).process(samples)
