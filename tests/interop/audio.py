"""An independent G.711 u-law codec and a few signal measurements.

The interop tests judge the server's audio with code of their own rather than
the project's `media` package, so a bug shared by both cannot hide itself.
"""

from __future__ import annotations

import numpy as np

RATE = 8000
FULL_SCALE = 32768.0

_BIAS = 0x84


def _decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


ULAW_TO_LINEAR = _decode_table()


def ulaw_decode(payload: bytes) -> np.ndarray:
    """G.711 u-law bytes to 16-bit linear samples (ITU-T G.711, table 2)."""
    return ULAW_TO_LINEAR[np.frombuffer(payload, dtype=np.uint8)]


def ulaw_encode(samples: np.ndarray) -> bytes:
    """16-bit linear samples to G.711 u-law bytes (the reference g711.c
    algorithm on 14-bit magnitudes, as audioop and most stacks do it)."""
    x = np.asarray(samples, dtype=np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), 8159) + (_BIAS >> 2)
    segment = np.maximum(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment > 7, 0x7F, code)
    return (code ^ mask).astype(np.uint8).tobytes()


def sine(freq: float, seconds: float, *, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A sine of `amplitude` (fraction of full scale) as int16 samples at 8 kHz."""
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    return np.round(amplitude * (FULL_SCALE - 1) * np.sin(2 * np.pi * freq * t + phase)).astype(
        np.int16
    )


def dominant_frequency(samples: np.ndarray, rate: int = RATE) -> float:
    """Frequency (Hz) of the strongest spectral peak, to well under 1 Hz for a
    clean tone of a few hundred milliseconds (Hann window, zero padding,
    parabolic interpolation of the log magnitude)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    if len(x) < 16 or not np.any(x):
        return 0.0
    window = np.hanning(len(x))
    nfft = 1 << max(14, int(np.ceil(np.log2(len(x)))) + 2)
    spectrum = np.abs(np.fft.rfft(x * window, nfft))
    spectrum[0] = 0.0
    k = int(np.argmax(spectrum))
    if 0 < k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        delta = 0.5 * (a - c) / denom if denom else 0.0
    else:
        delta = 0.0
    return (k + delta) * rate / nfft


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level relative to a full-scale square wave (a full-scale sine is -3 dBFS)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(x * x)))
    return 20 * np.log10(max(rms, 1e-9) / FULL_SCALE)


def tone_purity_db(
    samples: np.ndarray, freq: float, rate: int = RATE, width: float = 40.0
) -> float:
    """Energy within `width` Hz of `freq` over all other energy, in dB."""
    x = np.asarray(samples, dtype=np.float64)
    x = (x - x.mean()) * np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    near = np.abs(freqs - freq) <= width / 2
    inside = spectrum[near].sum()
    outside = spectrum[~near].sum()
    return 10 * np.log10((inside + 1e-12) / (outside + 1e-12))
