"""The 15 sounds the official Voice JS SDK loads, made here (no file from Twilio's CDN).

A Device fetches every sound named in its ``sounds`` option when it is built
(``incoming``, ``outgoing``, ``disconnect``, ``dtmf0``…``dtmf9``, ``dtmfs`` for
``*``, ``dtmfh`` for ``#``); pointing them at callswitch keeps the browser off
``sdk.twilio.com``. They are synthesized with numpy as 16 kHz mono 16-bit WAV:

- ``incoming``: the North American ring (440 + 480 Hz), 2 s on, 4 s off (the SDK loops it);
- ``outgoing``: two short 480 Hz blips as the call is placed;
- ``disconnect``: three falling tones (660, 550, 440 Hz);
- ``dtmf*``: the key's DTMF pair (ITU-T Q.23), 160 ms, as the SDK plays them.
"""

from __future__ import annotations

import functools

import numpy as np

from media.audio_file import wav_bytes

__all__ = ["NAMES", "RATE", "sound"]

RATE = 16000
LEVEL = 0.25  # of full scale, per tone
FADE_S = 0.005  # ramps against clicks

_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
_KEYS = {f"dtmf{d}": d for d in "0123456789"} | {"dtmfs": "*", "dtmfh": "#"}

NAMES = ("incoming", "outgoing", "disconnect", *_KEYS)


def _tone(freqs: tuple[float, ...], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    samples = sum(np.sin(2 * np.pi * f * t) for f in freqs) * LEVEL
    ramp = min(int(FADE_S * RATE), len(t) // 2)
    if ramp:
        envelope = np.ones(len(t))
        envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
        envelope[-ramp:] = np.linspace(1.0, 0.0, ramp)
        samples = samples * envelope
    return np.asarray(samples, dtype=np.float64)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE))


def _dtmf(key: str) -> np.ndarray:
    row = next(i for i, keys in enumerate(_KEYPAD) if key in keys)
    return _tone((_ROWS[row], _COLUMNS[_KEYPAD[row].index(key)]), 0.16)


def _samples(name: str) -> np.ndarray:
    if name == "incoming":
        return np.concatenate([_tone((440.0, 480.0), 2.0), _silence(4.0)])
    if name == "outgoing":
        blip = _tone((480.0,), 0.12)
        return np.concatenate([blip, _silence(0.08), blip])
    if name == "disconnect":
        return np.concatenate([_tone((f,), 0.15) for f in (660.0, 550.0, 440.0)])
    return _dtmf(_KEYS[name])


@functools.cache
def sound(name: str) -> bytes:
    """The WAV file of one of :data:`NAMES`; KeyError for another name."""
    if name not in NAMES:
        raise KeyError(name)
    pcm = np.clip(_samples(name), -1.0, 1.0) * 32767
    return wav_bytes(pcm.astype(np.int16), RATE)
