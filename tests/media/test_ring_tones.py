"""Ringback tones by country (media/ring_tones.py): the frequencies and cadences of
ITU-T E.180 for the main ones, every Twilio ``ringTone`` value served, the US tone
for none or an unknown value."""

from __future__ import annotations

import numpy as np
import pytest

from media.ring_tones import RING_TONES, ring_tone

RATE = 8000


def spectrum_peaks(samples: np.ndarray, count: int) -> list[float]:
    """The ``count`` strongest frequencies (1 Hz resolution) of one second of tone."""
    second = samples[:RATE].astype(np.float64)
    magnitudes = np.abs(np.fft.rfft(second))
    return sorted(float(f) for f in np.argsort(magnitudes)[-count:])


def on_off(samples: np.ndarray) -> list[tuple[float, float]]:
    """The cadence: (on, off) seconds, from where the samples are silent (10 ms blocks)."""
    block = RATE // 100
    loud = [bool(np.any(samples[i : i + block])) for i in range(0, len(samples), block)]
    runs: list[list[int]] = []
    for value in loud:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    seconds = [count / 100 for _, count in runs]
    return list(zip(seconds[::2], seconds[1::2], strict=True))


@pytest.mark.parametrize(
    ("name", "frequencies", "cadence"),
    [
        ("us", [440, 480], [(2.0, 4.0)]),
        ("uk", [400, 450], [(0.4, 0.2), (0.4, 2.0)]),
        ("de", [425], [(1.0, 4.0)]),
        ("fr", [440], [(1.5, 3.5)]),
        ("jp", [384, 400, 416], [(1.0, 2.0)]),  # 400 Hz modulated at 16 Hz
    ],
)
def test_the_main_tones_have_their_frequencies_and_cadence(name, frequencies, cadence):
    samples = ring_tone(name)
    assert spectrum_peaks(samples, len(frequencies)) == frequencies
    assert on_off(samples) == cadence
    assert samples.dtype == np.int16 and 0.05 < np.abs(samples).max() / 32767 < 0.5


def test_every_twilio_value_is_served():
    twilio = [
        "at",
        "au",
        "bg",
        "br",
        "be",
        "ch",
        "cl",
        "cn",
        "cz",
        "de",
        "dk",
        "ee",
        "es",
        "fi",
        "fr",
        "gr",
        "hu",
        "il",
        "in",
        "it",
        "lt",
        "jp",
        "mx",
        "my",
        "nl",
        "no",
        "nz",
        "ph",
        "pl",
        "pt",
        "ru",
        "se",
        "sg",
        "th",
        "uk",
        "us",
        "us-old",
        "tw",
        "ve",
        "za",
    ]
    assert sorted(RING_TONES) == sorted(twilio)
    for name in twilio:
        samples = ring_tone(name)
        assert len(samples) == round(RING_TONES[name].period * RATE) and samples.any()


def test_none_or_an_unknown_value_is_the_us_tone_and_case_does_not_matter():
    assert ring_tone(None) is ring_tone("us")
    assert ring_tone("zz") is ring_tone("us")
    assert ring_tone(" UK ") is ring_tone("uk")
