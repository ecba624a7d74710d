"""Micro-benchmark of per-frame codec work (media/codecs.py, media/resample.py).

Run: .venv/bin/python loadtest/bench_codecs.py [frames-per-case]
Prints the cost of one 20 ms frame through each encoder, decoder, resampler and transcoder on
one core, and how many such streams one core could carry in real time (20 ms / cost). Nothing
is asserted: the numbers depend on the machine and on what else it is doing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from media import codecs
from media.resample import RATES, Resampler
from media.tones import sine

NAMES = ("PCMU", "PCMA", "G722", "OPUS")
TRANSCODES = (
    ("PCMU", "OPUS"),
    ("OPUS", "PCMU"),
    ("PCMU", "G722"),
    ("G722", "PCMA"),
    ("G722", "OPUS"),
    ("OPUS", "G722"),
)


def _speechlike(rate: int, seconds: float = 1.0) -> np.ndarray:
    """A few harmonics plus noise: closer to what codecs see than a pure tone."""
    rng = np.random.default_rng(1)
    wave = sum(sine(f, seconds, rate, amplitude=0.1) for f in (220, 440, 880, 1760))
    return np.clip(wave + rng.normal(0, 500, wave.size), -32768, 32767).astype(np.int16)


def _per_frame(work: Callable[[object], object], inputs: list, frames: int) -> float:
    """Microseconds per call of ``work`` on the next of ``inputs`` (cycled), best of three."""
    feed = [inputs[i % len(inputs)] for i in range(frames)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for item in feed:
            work(item)
        best = min(best, (time.perf_counter() - start) / frames)
    return best * 1e6


def _report(label: str, micros: float) -> None:
    print(f"  {label:<28} {micros:8.1f} us/frame   {20_000 / micros:8.0f} streams/core")


def _frames_of(samples: np.ndarray, size: int) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, samples.size - size + 1, size)]


def main(frames: int) -> None:
    print(f"one 20 ms frame, best of 3 x {frames} frames")
    print("encoders and decoders")
    for name in NAMES:
        encoder = codecs.encoder(name)
        pcm = _frames_of(_speechlike(encoder.sample_rate), encoder.frame_samples)
        _report(f"{name} encode", _per_frame(encoder.encode, pcm, frames))
        payloads = [codecs.encoder(name).encode(frame) for frame in pcm]
        decoder = codecs.decoder(name)
        _report(
            f"{name} decode",
            _per_frame(decoder.decode, payloads, frames),
        )
    print("resamplers")
    for source in RATES:
        for target in RATES:
            if source == target:
                continue
            resampler = Resampler(source, target)
            pcm = _frames_of(_speechlike(source), source // 50)
            _report(
                f"{source} -> {target}",
                _per_frame(resampler.process, pcm, frames),
            )
    print("transcoders (decode + resample + encode)")
    for source, target in TRANSCODES:
        encoder = codecs.encoder(source)
        pcm = _frames_of(_speechlike(encoder.sample_rate), encoder.frame_samples)
        payloads = [encoder.encode(frame) for frame in pcm]
        transcoder = codecs.Transcoder(source, target)
        _report(
            f"{source} -> {target}",
            _per_frame(transcoder, payloads, frames),
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
