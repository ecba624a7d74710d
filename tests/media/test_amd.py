"""Answering-machine detection (media/amd.py) on speech eSpeak NG says and on tones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.amd import AmdSettings, MachineDetector
from tests.speech_audio import spoken_fixture

RATE = 8000
FRAME = 160
# eSpeak NG's words through G.711 (tests/speech_audio.py); a missing espeak-ng fails
# under CI=true rather than skip.
spoken = pytest.fixture(spoken_fixture, name="spoken")

GREETING = (
    "Hi, you have reached the voicemail of Jordan Smith. I am not available to take "
    "your call right now. Please leave your name, number and a short message after the tone."
)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), dtype=np.int16)


def tone(hz: float, seconds: float, dbfs: float = -12.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (10 ** (dbfs / 20) * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def line_noise(seconds: float, dbfs: float = -62.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 10 ** (dbfs / 20) * 32767, int(RATE * seconds))).astype(np.int16)


def detect(audio: np.ndarray, settings: AmdSettings | None = None, noise: bool = True):
    detector = MachineDetector(settings)
    if noise:
        audio = audio + line_noise(audio.size / RATE)
    for start in range(0, audio.size - FRAME + 1, FRAME):
        result = detector.feed(audio[start : start + FRAME], RATE)
        if result is not None:
            return result
    return detector.catch_up(detector.elapsed_ms + 60_000)


def test_hello_and_a_wait_is_a_human(spoken):
    result = detect(np.concatenate([silence(0.4), spoken("Hello?", 0, 0), silence(6)]))
    assert result.answered_by == "human"
    assert 1_200 < result.duration_ms <= 3_000  # the speech plus the 1.2 s end threshold


@pytest.mark.parametrize("speed", [140, 175, 210])
def test_a_long_greeting_is_a_machine_as_soon_as_it_outlasts_the_threshold(spoken, speed):
    result = detect(np.concatenate([silence(0.3), spoken(GREETING, 0, 0, speed=speed), silence(6)]))
    assert result.answered_by == "machine_start"
    assert 2_400 < result.duration_ms < 4_500


def test_detect_message_end_waits_for_the_beep_or_the_silence(spoken):
    settings = AmdSettings(detect_message_end=True)
    greeting = spoken(GREETING, 0, 0, speed=160)
    beep = detect(np.concatenate([greeting, silence(0.4), tone(1000, 0.5), silence(5)]), settings)
    assert beep.answered_by == "machine_end_beep"
    assert beep.duration_ms > greeting.size / RATE * 1000
    quiet = detect(np.concatenate([greeting, silence(5)]), settings)
    assert quiet.answered_by == "machine_end_silence"
    settings_short = AmdSettings(detect_message_end=True, timeout_ms=5_000)
    cut = detect(spoken(GREETING + " " + GREETING, 0, 0, speed=160), settings_short)
    assert (cut.answered_by, cut.duration_ms) == ("machine_end_other", 5_000)


def test_a_fax_calling_tone_is_a_fax():
    cng = np.concatenate([silence(0.2), tone(1100, 0.5), silence(3.0), tone(1100, 0.5)])
    result = detect(cng)
    assert result.answered_by == "fax" and result.duration_ms <= 700
    assert detect(np.concatenate([tone(2100, 2.0)])).answered_by == "fax"  # CED


def test_silence_is_unknown_after_the_silence_timeout():
    result = detect(silence(8))
    assert (result.answered_by, result.duration_ms) == ("unknown", 5_000)
    shorter = detect(silence(8), AmdSettings(silence_timeout_ms=2_000))
    assert shorter.duration_ms == 2_000


def test_a_peer_that_sends_nothing_is_caught_up_as_silence():
    detector = MachineDetector()
    assert detector.catch_up(4_000) is None
    assert detector.catch_up(5_020).answered_by == "unknown"


def test_a_beep_is_not_speech_and_a_machine_needs_speech():
    assert detect(np.concatenate([tone(1000, 4.0), silence(6)])).answered_by == "unknown"


@given(
    st.lists(st.integers(-32768, 32767), min_size=0, max_size=400), st.sampled_from([8000, 16000])
)
def test_any_samples_never_raise(values, rate):
    detector = MachineDetector(AmdSettings(timeout_ms=3_000))
    frame = np.array(values, dtype=np.int16)
    for _ in range(3):
        result = detector.feed(frame, rate)
        assert result is None or result.duration_ms >= 0
