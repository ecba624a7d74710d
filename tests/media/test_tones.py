import math

import numpy as np
import pytest

from media.tones import ToneGenerator, dominant_frequency, level_dbfs, sine


def test_sine_exact_samples():
    wave = sine(2000, 4 / 8000, amplitude=1.0)
    assert wave.dtype == np.int16
    assert wave.tolist() == [0, 32767, 0, -32767]
    assert sine(2000, 4 / 8000, amplitude=1.0, phase=math.pi / 2).tolist() == [32767, 0, -32767, 0]
    assert sine(2000, 4 / 8000, amplitude=0.5).tolist() == [0, 16384, 0, -16384]


def test_sine_length_and_rate():
    assert len(sine(440, 0.02)) == 160
    assert len(sine(440, 0.02, rate=48000)) == 960
    assert len(sine(440, 0.0)) == 0


def test_sine_clips_instead_of_wrapping():
    wave = sine(1000, 0.01, amplitude=2.0)
    assert wave.max() == 32767
    assert wave.min() == -32768


@pytest.mark.parametrize(
    ("frequency", "frame"), [(1000, 160), (1234.5, 160), (440, 97), (3999, 20)]
)
def test_generator_phase_is_continuous(frequency, frame):
    generator = ToneGenerator(frequency, amplitude=0.7)
    frames = [generator.next_frame(frame) for _ in range(25)]
    assert all(f.dtype == np.int16 and len(f) == frame for f in frames)
    joined = np.concatenate(frames).astype(np.int32)
    reference = sine(frequency, 25 * frame / 8000, amplitude=0.7).astype(np.int32)
    assert np.max(np.abs(joined - reference)) <= 1


def test_generator_does_not_drift_over_a_long_run():
    generator = ToneGenerator(1000, rate=8000, amplitude=0.5)
    for _ in range(20_000):  # 400 s of 20 ms frames
        generator.next_frame()
    frame = generator.next_frame()
    # 1 kHz at 8 kHz repeats every 8 samples, so after whole frames the phase is back at 0.
    assert np.array_equal(frame, sine(1000, 0.02, amplitude=0.5))
    a, b = generator.next_frame(3), generator.next_frame(5)
    assert np.array_equal(np.concatenate([a, b]), sine(1000, 0.001, amplitude=0.5))


@pytest.mark.parametrize("frequency", [50.0, 300.0, 697.0, 1000.0, 1004.3, 2500.7, 3900.0])
def test_dominant_frequency_of_one_second_tone(frequency):
    assert dominant_frequency(sine(frequency, 1.0)) == pytest.approx(frequency, abs=0.5)


def test_dominant_frequency_of_short_frame_and_other_rates():
    assert dominant_frequency(sine(1000, 0.02)) == pytest.approx(1000, abs=5)
    assert dominant_frequency(sine(7040, 0.5, rate=48000), rate=48000) == pytest.approx(7040, abs=5)


def test_dominant_frequency_picks_the_louder_tone_in_noise():
    rng = np.random.default_rng(5)
    mix = (
        sine(1000, 1.0, amplitude=0.4).astype(np.float64)
        + sine(300, 1.0, amplitude=0.1)
        + rng.normal(0, 1500, 8000)
    )
    assert dominant_frequency(mix) == pytest.approx(1000, abs=5)


def test_dominant_frequency_ignores_dc_and_silence():
    assert dominant_frequency(sine(1500, 1.0).astype(np.float64) + 5000) == pytest.approx(
        1500, abs=5
    )
    assert dominant_frequency(np.zeros(800)) == 0.0
    with pytest.raises(ValueError):
        dominant_frequency(np.zeros(2))


def test_level_dbfs():
    assert level_dbfs(np.full(100, -32768, dtype=np.int16)) == 0.0
    assert level_dbfs(np.full(100, 16384, dtype=np.int16)) == pytest.approx(-6.0206, abs=1e-4)
    assert level_dbfs(sine(1000, 1.0, amplitude=1.0)) == pytest.approx(-3.0103, abs=0.01)
    assert level_dbfs(ToneGenerator(1000).next_frame()) == pytest.approx(-9.031, abs=0.01)
    assert level_dbfs(np.zeros(160, dtype=np.int16)) == -math.inf
    assert level_dbfs(np.zeros(0, dtype=np.int16)) == -math.inf
