"""Sample-rate conversion: tones keep pitch and level, streams equal one-shot, no clicks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.resample import RATES, Resampler, resample
from media.tones import dominant_frequency, level_dbfs, sine

PAIRS = [(a, b) for a in RATES for b in RATES if a != b]


def _settled(samples: np.ndarray, rate: int) -> np.ndarray:
    return samples[rate // 50 :]  # skip the first 20 ms (filter start-up)


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_tone_keeps_frequency_level_and_length(source, target):
    tone = sine(1000, 1.0, source, amplitude=0.5)
    out = resample(tone, source, target)
    assert out.dtype == np.int16
    assert out.size == target
    assert dominant_frequency(_settled(out, target), target) == pytest.approx(1000, abs=1)
    assert level_dbfs(_settled(out, target)) == pytest.approx(level_dbfs(tone), abs=0.1)


def test_8k_to_48k_and_back_is_the_same_tone():
    tone = sine(440, 1.0, 8000, amplitude=0.5)
    back = resample(resample(tone, 8000, 48000), 48000, 8000)
    assert back.size == tone.size
    assert dominant_frequency(back[160:], 8000) == pytest.approx(440, abs=1)
    assert level_dbfs(back[160:]) == pytest.approx(level_dbfs(tone), abs=0.1)
    # Only the filters' delay (about 3 ms) separates the two: compare with the delayed tone.
    delay = Resampler(8000, 48000).delay + Resampler(48000, 8000).delay
    assert 0.002 < delay < 0.004
    delayed = sine(440, 1.0, 8000, amplitude=0.5, phase=-2 * np.pi * 440 * delay)
    error = back[160:].astype(np.int32) - delayed[160:]
    assert np.abs(error).max() < 0.01 * 32767


def test_upsampling_leaves_no_images():
    # A 3 kHz tone at 8 kHz has an image at 5 kHz once zero-stuffed; the filter removes it.
    out = resample(sine(3000, 1.0, 8000), 8000, 48000).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    bins = np.fft.rfftfreq(out.size, 1 / 48000)
    image = spectrum[np.argmin(np.abs(bins - 5000))]
    assert 20 * np.log10(image / spectrum.max()) < -60


def test_downsampling_removes_what_the_lower_rate_cannot_hold():
    # 6 kHz at 48 kHz would alias to 2 kHz at 8 kHz without the low-pass.
    out = resample(sine(6000, 1.0, 48000, amplitude=0.5), 48000, 8000)
    assert level_dbfs(_settled(out, 8000)) < level_dbfs(sine(6000, 1.0, 48000, 0.5)) - 55


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_streaming_in_20ms_chunks_equals_one_shot(source, target):
    tone = sine(697, 0.5, source, amplitude=0.7)
    whole = resample(tone, source, target)
    resampler = Resampler(source, target)
    chunk = source // 50
    pieces = [resampler.process(tone[i : i + chunk]) for i in range(0, tone.size, chunk)]
    assert all(piece.size == target // 50 for piece in pieces)
    streamed = np.concatenate(pieces)
    assert streamed.size == whole.size
    assert np.abs(streamed.astype(np.int32) - whole).max() <= 1  # float32 rounding only


def test_chunks_that_do_not_divide_the_factor_lose_nothing():
    tone = sine(1000, 0.1, 48000)
    resampler = Resampler(48000, 8000)
    sizes = [7, 961, 5, 1000, 1827]  # 3800 samples
    start = 0
    pieces = []
    for size in sizes:
        pieces.append(resampler.process(tone[start : start + size]))
        start += size
    streamed = np.concatenate(pieces)
    assert streamed.size == sum(sizes) // 6
    assert np.array_equal(streamed, resample(tone[:start], 48000, 8000))


@pytest.mark.parametrize(("source", "target"), [(8000, 48000), (8000, 16000), (48000, 8000)])
def test_no_clicks_at_chunk_boundaries(source, target):
    # A full-scale-ish low tone: the largest honest step between samples is small.
    tone = sine(300, 0.4, source, amplitude=0.8)
    resampler = Resampler(source, target)
    chunk = source // 50
    out = np.concatenate(
        [resampler.process(tone[i : i + chunk]) for i in range(0, tone.size, chunk)]
    ).astype(np.int32)
    steps = np.abs(np.diff(out[target // 50 :]))
    # d/dt of A sin(2 pi f t) peaks at 2 pi f A: that many units per second, at `target` rate.
    bound = 2 * np.pi * 300 * 0.8 * 32767 / target
    assert steps.max() <= bound * 1.05 + 2


def test_full_scale_input_saturates_instead_of_wrapping():
    square = np.tile(np.array([32767] * 20 + [-32768] * 20, dtype=np.int16), 50)
    out = resample(square, 8000, 48000).astype(np.int32)
    # The filter rings past full scale (Gibbs); wrapping would show as a jump of ~65535.
    assert np.abs(np.diff(out)).max() < 40000
    assert out.max() == 32767 and out.min() == -32768


def test_same_rate_returns_the_input():
    tone = sine(440, 0.02)
    assert resample(tone, 8000, 8000) is tone


def test_bad_arguments():
    with pytest.raises(ValueError, match="44100"):
        Resampler(44100, 8000)
    with pytest.raises(TypeError):
        resample(np.zeros(160, dtype=np.float32), 8000, 16000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((2, 160), dtype=np.int16), 8000, 16000)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PAIRS),
    st.lists(st.integers(0, 700), min_size=1, max_size=8),
    st.integers(0, 2**32 - 1),
)
def test_any_chunking_matches_one_shot(pair, sizes, seed):
    source, target = pair
    rng = np.random.default_rng(seed)
    signal = rng.integers(-32768, 32768, sum(sizes), dtype=np.int16)
    resampler = Resampler(source, target)
    pieces, start = [], 0
    for size in sizes:
        pieces.append(resampler.process(signal[start : start + size]))
        start += size
    streamed = np.concatenate(pieces)
    whole = resample(signal, source, target)
    assert streamed.size == whole.size == signal.size * target // source
    assert np.all(np.abs(streamed.astype(np.int32) - whole) <= 1)
