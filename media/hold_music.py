"""The default hold music: a short loop of soft chords, made here with numpy.

Callers waiting in a queue without a ``waitUrl`` (and conferences waiting to start)
hear this instead of Twilio's playlist on the internet: eight seconds of a
I-vi-IV-V progression in C major (C, A minor, F, G), each chord two seconds of
gently decaying sines (an electric-piano-like tone: the fundamental and a quieter
octave) under a slow arpeggio of its notes an octave up. It is computed once, on
first use, from nothing but these numbers: no file, no licence, no network.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["HOLD_MUSIC_CHORDS", "HOLD_MUSIC_SECONDS", "hold_music"]

RATE = 8000
CHORD_SECONDS = 2.0
ARPEGGIO_SECONDS = 0.25
PEAK = 0.35  # of full scale: about -9 dBFS at the loudest, soft on a phone

# MIDI note numbers: (bass, chord tones); A4 = 69 = 440 Hz.
HOLD_MUSIC_CHORDS: tuple[tuple[int, tuple[int, int, int]], ...] = (
    (48, (60, 64, 67)),  # C: C3 | C4 E4 G4
    (45, (57, 60, 64)),  # Am: A2 | A3 C4 E4
    (41, (57, 60, 65)),  # F: F2 | A3 C4 F4
    (43, (59, 62, 67)),  # G: G2 | B3 D4 G4
)
HOLD_MUSIC_SECONDS = CHORD_SECONDS * len(HOLD_MUSIC_CHORDS)


def _hz(note: int) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def _note(note: int, seconds: float, decay_s: float) -> np.ndarray:
    """One struck note: a 10 ms attack, an exponential decay, a 30 ms release to zero."""
    t = np.arange(round(seconds * RATE)) / RATE
    f = _hz(note)
    tone = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)
    envelope = np.exp(-t / decay_s) * np.minimum(1.0, t / 0.010)
    release = round(0.030 * RATE)
    envelope[-release:] *= np.linspace(1.0, 0.0, release)
    result: np.ndarray = tone * envelope
    return result


def _chord(bass: int, tones: tuple[int, int, int]) -> np.ndarray:
    wave = 0.8 * _note(bass, CHORD_SECONDS, 1.5)
    for tone in tones:
        wave += _note(tone, CHORD_SECONDS, 1.2)
    step = round(ARPEGGIO_SECONDS * RATE)
    pattern = [*tones, tones[1]] * 2  # up and back, eight notes per chord
    for index, tone in enumerate(pattern):
        start = index * step
        wave[start : start + step] += 0.5 * _note(tone + 12, ARPEGGIO_SECONDS, 0.2)
    return wave


@lru_cache(maxsize=1)
def hold_music() -> np.ndarray:
    """The loop as 8 kHz mono int16 (play it with ``loop=0``); the same array each call."""
    wave = np.concatenate([_chord(bass, tones) for bass, tones in HOLD_MUSIC_CHORDS])
    wave *= PEAK * 32767 / np.max(np.abs(wave))
    music: np.ndarray = np.rint(wave).astype(np.int16)
    music.setflags(write=False)
    return music
