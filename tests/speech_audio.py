"""Speech test audio: words synthesized with eSpeak NG, as a phone sends them
(the ``spoken`` fixture of tests/media/speech and tests/control_api/voice)."""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

from media.audio_file import decode_audio
from media.g711 import ulaw_decode, ulaw_encode
from tests.peers import require


@functools.lru_cache(maxsize=32)
def _spoken(text: str, voice: str, speed: int) -> bytes:
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed)],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    samples = np.asarray(decode_audio(wav), dtype=np.int16)
    return ulaw_encode(samples)  # through G.711, as a caller's words arrive


def spoken_fixture():
    """``spoken(text, lead_s=0.5, tail_s=1.5)``: 8 kHz int16 of eSpeak NG saying
    ``text`` through G.711 mu-law, with silence before and after."""
    require(shutil.which("espeak-ng") is not None, "espeak-ng is not installed")

    def make(
        text: str, lead_s: float = 0.5, tail_s: float = 1.5, voice: str = "en-us", speed: int = 150
    ) -> np.ndarray:
        words = ulaw_decode(_spoken(text, voice, speed))
        return np.concatenate(
            [np.zeros(int(lead_s * 8000), np.int16), words, np.zeros(int(tail_s * 8000), np.int16)]
        )

    return make
