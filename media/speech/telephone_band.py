"""Telephone-band adaptation of PocketSphinx's wideband en-US model.

The model PocketSphinx ships was trained on 16 kHz speech; a phone call carries
300-3400 Hz through G.711 at 8 kHz. Resampled to 16 kHz, a call's top mel
filters (4-6.8 kHz of the model's 130-6800 Hz) hold only noise, and every
cepstral coefficient the model sees moves with them: eSpeak NG digit strings
decoded with a digit grammar came back with 54% word errors through G.711
against 16% from the same speech at 16 kHz.

What band-limiting does to the model's features is very nearly affine in the
cepstral domain (the lost filters' log energies are replaced by a constant,
and the DCT is linear): fitted by least squares on parallel audio (the same
utterance wideband and through G.711, 8 kHz and back), ``narrow = A wide + b``
leaves 1-8% of the variance per coefficient. Fitted the same way for the
deltas and accelerations the decoder derives from them (an affine map of the
statics would carry over to them unchanged, but the real one is not quite
affine) and applied to the model's Gaussian means as a one-class MLLR
transform, the model expects telephone features instead of wideband ones; it
is a property of the channel, not of a speaker. ``media/speech/telephone.mllr`` is the transform
this module fits (``python -m media.speech.telephone_band``) from eSpeak NG
speech of random dictionary words in eight voices at three speeds.

The frontend here (:func:`cepstra`) follows the model's ``feat.params``
(pre-emphasis 0.97, 25.6 ms Hamming windows every 10 ms, 512-point FFT, 25
unit-area triangular mel filters from 130 to 6800 Hz, natural log, orthonormal
DCT-II, lifter 22); decoding its cepstra through ``process_cep`` recognizes as
well as PocketSphinx's own frontend does (15.4% against 16.3% word errors on
the digits above), which is what makes a transform fitted on it valid.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from media.audio_file import decode_audio
from media.g711 import ulaw_decode, ulaw_encode
from media.resample import Resampler

__all__ = [
    "TRANSFORM",
    "Affine",
    "cepstra",
    "dynamics",
    "fit_band_transform",
    "mllr_text",
    "read_mllr",
    "scaled_transform",
    "telephone_path",
]

TRANSFORM = Path(__file__).with_name("telephone.mllr")
RATE = 16000
N_CEP = 13
N_FILT = 25
LOWER_HZ, UPPER_HZ = 130.0, 6800.0
WINDOW, SHIFT, N_FFT = 410, 160, 512  # 25.625 ms, 10 ms, at 16 kHz
LIFTER = 22
STREAMS = 3  # 1s_c_d_dd split 0-12/13-25/26-38: statics, deltas, accelerations
Affine = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # (A, b): A x + b


def _mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _filterbank() -> npt.NDArray[np.float64]:
    edges_mel = np.linspace(_mel(np.array(LOWER_HZ)), _mel(np.array(UPPER_HZ)), N_FILT + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bins = np.arange(N_FFT // 2 + 1) * RATE / N_FFT
    bank = np.zeros((N_FILT, bins.size))
    for i in range(N_FILT):
        left, centre, right = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins - left) / (centre - left)
        falling = (right - bins) / (right - centre)
        bank[i] = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (right - left))
    return bank


def _dct() -> npt.NDArray[np.float64]:
    i = np.arange(N_CEP)[:, None]
    j = np.arange(N_FILT)[None, :]
    basis = np.cos(np.pi * i * (j + 0.5) / N_FILT) * np.sqrt(2.0 / N_FILT)
    basis[0] *= np.sqrt(0.5)
    lifter = 1.0 + (LIFTER / 2.0) * np.sin(np.pi * np.arange(N_CEP) / LIFTER)
    lifted: npt.NDArray[np.float64] = basis * lifter[:, None]
    return lifted


_BANK = _filterbank()
_DCT = _dct()
_HAMMING = np.hamming(WINDOW)


def cepstra(samples: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """Frames x 13 cepstra of 16 kHz audio, as the model's frontend computes them."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < WINDOW:
        return np.zeros((0, N_CEP))
    emphasized = np.append(x[0], x[1:] - 0.97 * x[:-1])
    frames = 1 + (emphasized.size - WINDOW) // SHIFT
    index = np.arange(WINDOW)[None, :] + SHIFT * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(emphasized[index] * _HAMMING, N_FFT)) ** 2
    energies: npt.NDArray[np.float64] = np.log(np.maximum(power @ _BANK.T, 1e-5)) @ _DCT.T
    return energies


def dynamics(
    statics: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The deltas and accelerations of 1s_c_d_dd: ``c[t+2] - c[t-2]`` and
    ``(c[t+3] - c[t-1]) - (c[t+1] - c[t-3])``, the edges repeated."""
    frames = statics.shape[0]
    padded = np.pad(statics, ((3, 3), (0, 0)), mode="edge")
    deltas = padded[5 : 5 + frames] - padded[1 : 1 + frames]
    accelerations = (padded[6 : 6 + frames] - padded[2 : 2 + frames]) - (
        padded[4 : 4 + frames] - padded[0:frames]
    )
    return deltas, accelerations


def fit_band_transform(
    pairs: Iterable[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
) -> list[Affine]:
    """Per stream (statics, deltas, accelerations), ``(A, b)`` with ``narrow ~ A wide
    + b`` by least squares over the speech frames of (wide, narrow) cepstra pairs,
    each mean-normalized as the decoder does; the dynamic streams have no bias."""
    wides: list[list[npt.NDArray[np.float64]]] = [[] for _ in range(STREAMS)]
    narrows: list[list[npt.NDArray[np.float64]]] = [[] for _ in range(STREAMS)]
    for wide, narrow in pairs:
        frames = min(len(wide), len(narrow))
        w = wide[:frames] - wide[:frames].mean(axis=0)
        n = narrow[:frames] - narrow[:frames].mean(axis=0)
        speech = w[:, 0] > np.percentile(w[:, 0], 30)  # silence maps differently
        for stream, (ws, ns) in enumerate(zip((w, *dynamics(w)), (n, *dynamics(n)), strict=True)):
            wides[stream].append(ws[speech])
            narrows[stream].append(ns[speech])
    fitted: list[Affine] = []
    for stream in range(STREAMS):
        x = np.concatenate(wides[stream])
        design = np.hstack([x, np.ones((x.shape[0], 1))]) if stream == 0 else x
        coefficients, *_ = np.linalg.lstsq(design, np.concatenate(narrows[stream]), rcond=None)
        bias = coefficients[N_CEP] if stream == 0 else np.zeros(N_CEP)
        fitted.append(
            (np.asarray(coefficients[:N_CEP].T, np.float64), np.asarray(bias, np.float64))
        )
    return fitted


def mllr_text(streams: list[Affine], variance_scale: float = 1.0) -> str:
    """PocketSphinx's MLLR file: one class, three streams of 13 (``A`` rows, bias,
    variance scale each; every Gaussian's variances are multiplied by
    ``variance_scale``)."""
    lines = ["1", str(len(streams))]
    for a, b in streams:
        lines.append(str(N_CEP))
        lines.extend(" ".join(f"{value:.6f}" for value in row) for row in a)
        lines.append(" ".join(f"{value:.6f}" for value in b))
        lines.append(" ".join(str(float(variance_scale)) for _ in range(N_CEP)))
    return "\n".join(lines) + "\n"


def read_mllr(text: str) -> list[Affine]:
    """The streams of an MLLR file written by :func:`mllr_text` (its variance scale
    left out)."""
    values = text.split("\n")
    streams: list[Affine] = []
    line = 2
    for _ in range(int(values[1])):
        size = int(values[line])
        rows = [[float(v) for v in values[line + 1 + i].split()] for i in range(size)]
        bias = [float(v) for v in values[line + 1 + size].split()]
        streams.append((np.array(rows, np.float64), np.array(bias, np.float64)))
        line += size + 3
    return streams


@contextlib.contextmanager
def scaled_transform(variance_scale: float) -> Iterator[Path]:
    """The shipped transform with its Gaussians' variances scaled, as a file that
    exists while the context lasts (PocketSphinx reads it when a decoder is made)."""
    if variance_scale == 1.0:
        yield TRANSFORM
        return
    text = mllr_text(read_mllr(TRANSFORM.read_text()), variance_scale)
    with tempfile.TemporaryDirectory(prefix="callswitch-mllr-") as directory:
        path = Path(directory) / "telephone.mllr"
        path.write_text(text)
        yield path


def telephone_path(wide: npt.NDArray[np.int16], rate: int = RATE) -> npt.NDArray[np.float64]:
    """``wide`` (16 kHz) as a call delivers it to the recognizer: 8 kHz, G.711 mu-law,
    back to 16 kHz, aligned with the input (the same length; the resamplers' delay
    removed)."""
    narrow8 = Resampler(rate, 8000).process(wide)
    through = ulaw_decode(ulaw_encode(np.clip(narrow8, -32768, 32767).astype(np.int16)))
    back = Resampler(8000, rate).process(through).astype(np.float64)
    delay = _delay(wide.astype(np.float64), back)
    aligned = back[delay : delay + wide.size]
    return np.pad(aligned, (0, wide.size - aligned.size))


def _delay(reference: npt.NDArray[np.float64], delayed: npt.NDArray[np.float64]) -> int:
    span = min(reference.size, delayed.size, RATE)
    scores = [float(np.dot(reference[: span - lag], delayed[lag:span])) for lag in range(64)]
    return int(np.argmax(scores))


def _speak(text: str, voice: str, speed: int) -> npt.NDArray[np.int16]:
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed)],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return np.asarray(decode_audio(wav, RATE), dtype=np.int16)


def _dictionary_words(count: int, rng: random.Random) -> list[str]:
    from pocketsphinx import get_model_path

    words = []
    with open(Path(get_model_path()) / "en-us" / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            word = line.split(" ", 1)[0]
            if word.isalpha() and 3 <= len(word) <= 9:
                words.append(word)
    return rng.sample(words, count)


VOICES = ("en-us", "en", "en-us+f3", "en+m3", "en-us+m1", "en+f2", "en-us+f4", "en+m7")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--out", type=Path, default=TRANSFORM)
    args = parser.parse_args(argv)
    rng = random.Random(5)
    noise = np.random.default_rng(5)
    words = _dictionary_words(3000, rng)
    pairs = []
    for _ in range(args.utterances):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 9)))
        wide = _speak(text, rng.choice(VOICES), rng.choice((130, 160, 190)))
        narrow = telephone_path(wide)
        wide_f = wide.astype(np.float64)
        # the recognizer's faint dither (media.speech.sphinx.DITHER) on both sides
        pairs.append(
            (
                cepstra(wide_f + noise.normal(0.0, 30.0, wide_f.size)),
                cepstra(narrow + noise.normal(0.0, 30.0, narrow.size)),
            )
        )
    streams = fit_band_transform(pairs)
    args.out.write_text(mllr_text(streams))
    print(f"wrote {args.out} from {args.utterances} utterances")
    for name, (a, _) in zip(("statics", "deltas", "accelerations"), streams, strict=True):
        print(f"  {name:13} diag(A) = {np.diag(a).round(2)}")


if __name__ == "__main__":
    main()
