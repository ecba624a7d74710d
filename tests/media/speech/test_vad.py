"""Voice activity on 20 ms frames: speech yes, silence and hiss no."""

from __future__ import annotations

import numpy as np
import pytest

from media.speech.vad import VoiceActivityDetector


def frames(samples: np.ndarray, size: int = 160) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, samples.size - size + 1, size)]


def test_spoken_words_are_voiced_and_the_silence_around_them_is_not(spoken):
    vad = VoiceActivityDetector(8000)
    audio = spoken("seven eight nine", lead_s=1.0, tail_s=1.0)
    verdicts = [vad.is_speech(f) for f in frames(audio)]
    lead, tail = verdicts[:50], verdicts[-50:]
    middle = verdicts[50:-50]
    assert not any(lead) and not any(tail)
    assert sum(middle) / len(middle) > 0.5


def test_faint_hiss_is_not_speech():
    vad = VoiceActivityDetector(8000)
    hiss = np.random.default_rng(1).normal(0, 20, 8000).astype(np.int16)  # about -64 dBFS
    assert not any(vad.is_speech(f) for f in frames(hiss))


def test_frames_must_be_20_ms_and_rates_supported():
    with pytest.raises(ValueError, match="160 samples"):
        VoiceActivityDetector(8000).is_speech(np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="11025 Hz"):
        VoiceActivityDetector(11025)
    assert VoiceActivityDetector(16000).frame_samples == 320
