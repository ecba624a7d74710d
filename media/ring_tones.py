"""Ringback tones by country: what a caller hears while ``<Dial>`` rings the callee.

``<Dial ringTone="uk">`` picks one of the countries Twilio lists; each tone is its
frequencies and cadence as ITU-T E.180 (Supplement 2, "Various tones used in
national networks") and the national specifications give them: the North American
440 + 480 Hz for 2 s every 6 s, the British 400 + 450 Hz double ring, the European
425 Hz for 1 s every 5 s, and so on. A frequency written ``(f, m)`` is ``f`` Hz
amplitude-modulated at ``m`` Hz (Australia's 400 Hz by 17 Hz, Japan's 400 Hz by 16 Hz).
One period of each is made here with numpy, on first use; the player loops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["DEFAULT_RING_TONE", "RING_TONES", "RingTone", "ring_tone"]

RATE = 8000
LEVEL = 0.12  # of full scale per frequency: about -18 dBFS for a pair, as a network plays it

Frequency = float | tuple[float, float]  # Hz, or (carrier, modulation) Hz


@dataclass(frozen=True, slots=True)
class RingTone:
    """A ringback tone: the frequencies sounded together, and the cadence as (on, off)
    seconds pairs, one period of it."""

    frequencies: tuple[Frequency, ...]
    cadence: tuple[tuple[float, float], ...]

    @property
    def period(self) -> float:
        return sum(on + off for on, off in self.cadence)


_SINGLE = ((1.0, 4.0),)  # the common European cadence (ITU-T E.180: 1 s on, 4 s off)
_DOUBLE = ((0.4, 0.2), (0.4, 2.0))  # the British double ring

# Twilio's ringTone values (the <Dial> reference) and their tones.
RING_TONES: dict[str, RingTone] = {
    "at": RingTone((420.0,), ((1.0, 5.0),)),
    "au": RingTone(((400.0, 17.0),), _DOUBLE),
    "be": RingTone((425.0,), ((1.0, 3.0),)),
    "bg": RingTone((425.0,), _SINGLE),
    "br": RingTone((425.0,), _SINGLE),
    "ch": RingTone((425.0,), _SINGLE),
    "cl": RingTone((400.0,), ((1.0, 3.0),)),
    "cn": RingTone((450.0,), _SINGLE),
    "cz": RingTone((425.0,), _SINGLE),
    "de": RingTone((425.0,), _SINGLE),
    "dk": RingTone((425.0,), _SINGLE),
    "ee": RingTone((425.0,), _SINGLE),
    "es": RingTone((425.0,), ((1.5, 3.0),)),
    "fi": RingTone((425.0,), _SINGLE),
    "fr": RingTone((440.0,), ((1.5, 3.5),)),
    "gr": RingTone((425.0,), _SINGLE),
    "hu": RingTone((425.0,), ((1.25, 3.75),)),
    "il": RingTone((400.0,), ((1.0, 3.0),)),
    "in": RingTone(((400.0, 25.0),), _DOUBLE),
    "it": RingTone((425.0,), _SINGLE),
    "jp": RingTone(((400.0, 16.0),), ((1.0, 2.0),)),
    "lt": RingTone((425.0,), _SINGLE),
    "mx": RingTone((425.0,), _SINGLE),
    "my": RingTone((425.0,), _DOUBLE),
    "nl": RingTone((425.0,), _SINGLE),
    "no": RingTone((425.0,), _SINGLE),
    "nz": RingTone((400.0, 450.0), _DOUBLE),
    "ph": RingTone((425.0, 480.0), ((1.0, 4.0),)),
    "pl": RingTone((425.0,), _SINGLE),
    "pt": RingTone((425.0,), ((1.0, 5.0),)),
    "ru": RingTone((425.0,), ((0.8, 3.2),)),
    "se": RingTone((425.0,), ((1.0, 5.0),)),
    "sg": RingTone(((425.0, 24.0),), _DOUBLE),
    "th": RingTone((420.0,), ((1.0, 5.0),)),
    "tw": RingTone((440.0, 480.0), ((1.0, 2.0),)),
    "uk": RingTone((400.0, 450.0), _DOUBLE),
    "us": RingTone((440.0, 480.0), ((2.0, 4.0),)),
    "us-old": RingTone(((420.0, 40.0),), ((2.0, 4.0),)),
    "ve": RingTone((425.0,), _SINGLE),
    "za": RingTone(((400.0, 33.0),), _DOUBLE),
}
DEFAULT_RING_TONE = "us"


def _sound(frequencies: tuple[Frequency, ...], seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = np.zeros_like(t)
    for frequency in frequencies:
        if isinstance(frequency, tuple):
            carrier, modulation = frequency
            envelope = 0.5 + 0.5 * np.cos(2 * np.pi * modulation * t)
            wave += envelope * np.sin(2 * np.pi * carrier * t)
        else:
            wave += np.sin(2 * np.pi * frequency * t)
    return wave


@cache
def _period(name: str) -> np.ndarray:
    tone = RING_TONES[name]
    pieces = []
    for on, off in tone.cadence:
        pieces.append(_sound(tone.frequencies, on))
        pieces.append(np.zeros(round(off * RATE)))
    samples = np.rint(np.concatenate(pieces) * LEVEL * 32767).astype(np.int16)
    samples.setflags(write=False)
    return samples


def ring_tone(name: str | None = None) -> np.ndarray:
    """One period of the ringback of ``name`` (a Twilio ``ringTone`` value, any case),
    8 kHz int16, to loop; the US tone for None or a name Twilio does not list."""
    key = (name or DEFAULT_RING_TONE).strip().lower()
    return _period(key if key in RING_TONES else DEFAULT_RING_TONE)
