"""The telephone-band transform: its frontend, its fit, its file, and what it buys."""

from __future__ import annotations

import numpy as np
import pytest
from pocketsphinx import Decoder

from media.speech import sphinx
from media.speech.sphinx import SphinxEngine
from media.speech.telephone_band import (
    TRANSFORM,
    cepstra,
    dynamics,
    fit_band_transform,
    mllr_text,
    read_mllr,
    scaled_transform,
    telephone_path,
)


def test_cepstra_are_13_per_10_ms_frame():
    noise = np.random.default_rng(1).normal(0, 300, 16000)
    features = cepstra(noise)
    assert features.shape == (1 + (16000 - 410) // 160, 13)
    assert np.isfinite(features).all()
    assert cepstra(np.zeros(100)).shape == (0, 13)


def test_dynamics_are_the_decoders_deltas_and_accelerations():
    ramp = np.arange(20, dtype=np.float64)[:, None] * np.ones((1, 13))
    deltas, accelerations = dynamics(ramp)
    assert (deltas[3:-3] == 4).all() and (accelerations[3:-3] == 0).all()
    assert deltas.shape == accelerations.shape == ramp.shape


def test_a_band_limited_signal_loses_its_high_cepstral_detail():
    rng = np.random.default_rng(2)
    wide = rng.normal(0, 3000, 32000).astype(np.int16)  # white: energy in every filter
    narrow = telephone_path(wide)
    assert narrow.size == wide.size
    # c0 follows the total log energy: through the telephone band it falls.
    assert cepstra(narrow)[:, 0].mean() < cepstra(wide.astype(np.float64))[:, 0].mean() - 1.0


def test_the_fit_recovers_a_known_affine_map():
    rng = np.random.default_rng(3)
    a = np.eye(13) * 0.8 + rng.normal(0, 0.02, (13, 13))
    pairs = []
    for _ in range(20):
        wide = rng.normal(0, 5, (300, 13))
        narrow = wide @ a.T + rng.normal(0, 0.01, (300, 13))
        pairs.append((wide, narrow))
    (statics, bias), (deltas, none), (accelerations, _) = fit_band_transform(pairs)
    assert np.allclose(statics, a, atol=0.01)
    assert np.allclose(bias, 0, atol=0.01) and not none.any()
    # an affine map of the statics carries over to their dynamics
    assert np.allclose(deltas, a, atol=0.02) and np.allclose(accelerations, a, atol=0.03)


def test_pocketsphinx_reads_the_transform_it_ships_and_one_written_here(tmp_path):
    assert TRANSFORM.is_file()
    written = tmp_path / "identity.mllr"
    written.write_text(mllr_text([(np.eye(13), np.zeros(13))] * 3))
    assert written.read_text().split("\n")[:3] == ["1", "3", "13"]
    for path in (TRANSFORM, written):
        Decoder(loglevel="FATAL", lm=None, mllr=str(path))  # raises on a malformed file
    broken = tmp_path / "broken.mllr"
    broken.write_text("1\n3\n13\n1.0 2.0\n")
    with pytest.raises(RuntimeError):
        Decoder(loglevel="FATAL", lm=None, mllr=str(broken))


DIGIT_PHRASES = (
    "seven seven six three",
    "three six zero eight",
    "eight five one seven",
    "three four four nine seven",
    "zero seven three six six",
    "eight two eight eight three",
)


def _errors(engine: SphinxEngine, spoken, phrase: str) -> int:
    engine.begin(("$OOV_CLASS_DIGIT_SEQUENCE",))
    audio = spoken(phrase)
    for start in range(0, audio.size, 800):
        engine.process(audio[start : start + 800])
    said, heard = phrase.split(), engine.end().text.split()
    row = list(range(len(heard) + 1))  # word edit distance
    for i, word in enumerate(said, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1]


def test_spoken_digits_through_g711_are_heard_better_with_the_transform(spoken, monkeypatch):
    adapted = sum(_errors(SphinxEngine(8000), spoken, p) for p in DIGIT_PHRASES)
    monkeypatch.setattr(sphinx, "GRAMMAR_WIP", 0.65)  # PocketSphinx's defaults
    monkeypatch.setattr(sphinx, "GRAMMAR_TOPN", 4)
    monkeypatch.setattr(sphinx, "GRAMMAR_VARIANCE_SCALE", 1.0)

    def wideband_model(mllr=None, **options):
        return Decoder(bestpath=True, loglevel="FATAL", cmninit=sphinx.TELEPHONE_CMN, **options)

    monkeypatch.setattr(sphinx, "_decoder", wideband_model)
    unadapted = sum(_errors(SphinxEngine(8000), spoken, p) for p in DIGIT_PHRASES)
    words = sum(len(p.split()) for p in DIGIT_PHRASES)
    assert adapted <= 0.35 * words, (adapted, words)
    assert adapted < unadapted / 2, (adapted, unadapted)


def test_the_transform_reads_back_and_scales_variances():
    streams = read_mllr(TRANSFORM.read_text())
    assert [a.shape for a, _ in streams] == [(13, 13)] * 3
    assert mllr_text(streams) == TRANSFORM.read_text()
    with scaled_transform(2.5) as path:
        lines = path.read_text().split("\n")
        assert lines[17] == " ".join(["2.5"] * 13)  # stream 1's variance scale
        assert read_mllr(path.read_text())[0][0].tolist() == streams[0][0].tolist()
        Decoder(loglevel="FATAL", lm=None, mllr=str(path))
    assert not path.exists()  # read when the decoder is made, then gone
    with scaled_transform(1.0) as path:
        assert path == TRANSFORM


def test_broadened_gaussians_hear_digits_better_than_the_transform_alone(spoken, monkeypatch):
    shipped = sum(_errors(SphinxEngine(8000), spoken, p) for p in DIGIT_PHRASES)
    monkeypatch.setattr(sphinx, "GRAMMAR_TOPN", 4)
    monkeypatch.setattr(sphinx, "GRAMMAR_VARIANCE_SCALE", 1.0)
    plain = sum(_errors(SphinxEngine(8000), spoken, p) for p in DIGIT_PHRASES)
    assert shipped < plain, (shipped, plain)
