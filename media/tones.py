"""Tone generation and the spectral/level measurements used to check audio paths."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ToneGenerator", "beep", "dominant_frequency", "level_dbfs", "sine"]

_FULL_SCALE = 32767.0


def _to_int16(wave: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.clip(np.rint(wave), -32768, 32767).astype(np.int16)
    return result


def sine(
    frequency: float,
    duration_s: float,
    rate: int = 8000,
    amplitude: float = 0.5,
    phase: float = 0.0,
) -> np.ndarray:
    """A sine of `amplitude` (1.0 = full scale) starting at `phase` radians, as int16."""
    count = round(duration_s * rate)
    t = np.arange(count, dtype=np.float64)
    return _to_int16(amplitude * _FULL_SCALE * np.sin(2.0 * np.pi * frequency * t / rate + phase))


def beep(
    frequency: float = 1000.0,
    duration_s: float = 0.4,
    rate: int = 8000,
    amplitude: float = 0.25,
    ramp_s: float = 0.005,
) -> np.ndarray:
    """A conference join/leave beep: a sine with short raised-cosine ramps at both ends.

    The ramps keep the start and end from clicking, which a hard-gated sine does audibly.
    """
    wave = sine(frequency, duration_s, rate, amplitude).astype(np.float64)
    ramp = min(round(ramp_s * rate), wave.size // 2)
    if ramp > 0:
        fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        wave[:ramp] *= fade
        wave[wave.size - ramp :] *= fade[::-1]
    return _to_int16(wave)


class ToneGenerator:
    """Steady single-frequency tones: the 1 kHz test tone, ITU-T E.180 call-progress tones.

    Frames come one by one with the phase continuous across them.

    The phase is kept in cycles modulo 1 so that it stays exact however long the tone plays;
    accumulating radians in a float would drift audibly after hours.
    """

    def __init__(self, frequency: float, rate: int = 8000, amplitude: float = 0.5) -> None:
        self.frequency = frequency
        self.rate = rate
        self.amplitude = amplitude
        self._cycles_per_sample = frequency / rate
        self._phase = 0.0
        self._ramps: dict[int, np.ndarray] = {}

    def next_frame(self, samples: int = 160) -> np.ndarray:
        ramp = self._ramps.get(samples)
        if ramp is None:
            ramp = np.arange(samples, dtype=np.float64) * self._cycles_per_sample
            self._ramps[samples] = ramp
        wave = np.sin(2.0 * np.pi * (self._phase + ramp))
        self._phase = math.fmod(self._phase + samples * self._cycles_per_sample, 1.0)
        return _to_int16(wave * (self.amplitude * _FULL_SCALE))


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    """Frequency of the strongest spectral peak, in Hz.

    Hann-windowed FFT, zero-padded to at least 8192 points, refined by fitting a parabola to
    the log magnitudes around the peak bin (exact for a Gaussian-like main lobe, within a few
    hundredths of a bin for Hann). Returns 0.0 for silence.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 3:
        raise ValueError("need at least 3 samples")
    x = x - x.mean()
    if not np.any(x):
        return 0.0
    size = max(8192, 1 << (x.size - 1).bit_length())
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), size))
    peak = int(np.argmax(spectrum[1:])) + 1
    offset = 0.0
    if peak < spectrum.size - 1:
        left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        denominator = left - 2.0 * centre + right
        if denominator < 0:
            offset = 0.5 * (left - right) / denominator
    result: float = (peak + offset) * rate / size
    return result


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to 32768: 20*log10(rms/32768).

    With this reference a full-scale square wave reads 0 dBFS and a full-scale sine about
    -3.01 dBFS; digital silence is -inf.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(x * x)))
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -math.inf
