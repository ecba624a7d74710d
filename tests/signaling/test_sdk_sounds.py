"""The official SDK's 15 sounds, made here: WAV files whose tones are what they claim."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from media.dtmf import GoertzelDetector
from media.tones import dominant_frequency, level_dbfs
from signaling.sdk_sounds import NAMES, RATE, sound


def samples(name: str) -> np.ndarray:
    with wave.open(io.BytesIO(sound(name))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def test_the_fifteen_names_the_device_options_take():
    assert sorted(NAMES) == sorted(
        ["incoming", "outgoing", "disconnect", *[f"dtmf{d}" for d in range(10)], "dtmfs", "dtmfh"]
    )
    with pytest.raises(KeyError):
        sound("cowbell")


@pytest.mark.parametrize(
    ("name", "key"), [(f"dtmf{d}", str(d)) for d in range(10)] + [("dtmfs", "*"), ("dtmfh", "#")]
)
def test_each_key_sound_is_its_dtmf_pair(name, key):
    audio = samples(name)
    assert 0.15 <= len(audio) / RATE <= 0.17  # 160 ms, as the SDK plays digits
    detector = GoertzelDetector()
    heard = detector.feed(audio[::2].astype(np.float64))  # 8 kHz for the detector
    assert heard == key


def test_the_ringtone_rings_two_seconds_in_six():
    audio = samples("incoming")
    assert len(audio) == 6 * RATE
    ring, pause = audio[: 2 * RATE], audio[2 * RATE + 100 :]
    assert level_dbfs(ring) > -15 and not pause.any()
    spectrum = np.abs(np.fft.rfft(ring))
    peaks = sorted(np.argsort(spectrum)[-2:] * RATE / len(ring))
    assert peaks == pytest.approx([440.0, 480.0], abs=2)


def test_outgoing_and_disconnect_are_short_tones():
    outgoing, disconnect = samples("outgoing"), samples("disconnect")
    assert len(outgoing) < RATE and len(disconnect) < RATE
    assert abs(dominant_frequency(outgoing[: int(0.1 * RATE)], RATE) - 480) < 15
    assert abs(dominant_frequency(disconnect[: int(0.14 * RATE)], RATE) - 660) < 15
    assert abs(dominant_frequency(disconnect[-int(0.14 * RATE) :], RATE) - 440) < 15
