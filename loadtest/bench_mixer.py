"""Micro-benchmark of the conference mixer (media/mixer.py).

Run: .venv/bin/python loadtest/bench_mixer.py [ticks]
Prints the time per 20 ms tick (every participant's push, then one ``mix()``) for rooms of
3, 10 and 50 PCMU participants, with everyone talking and with only three talking (the usual
case: the others' shared N-1 mix is encoded once). A tick has 20 ms; the share of it used is
the share of one core a room of that size costs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.g711 import ulaw_encode
from media.mixer import Mixer
from media.tones import ToneGenerator

TICK_SECONDS = 0.020


def bench(size: int, talkers: int, ticks: int) -> tuple[float, float]:
    """Seconds per tick for push + mix, and for mix alone."""
    mixer = Mixer()
    payloads = []
    for index in range(size):
        mixer.add(index, "PCMU")
        tone = ToneGenerator(200 + 37 * index, amplitude=0.1)
        payloads.append([ulaw_encode(tone.next_frame()) for _ in range(50)])
    speaking = range(min(talkers, size))
    mix_time = 0.0
    start = time.perf_counter()
    for tick in range(ticks):
        for index in speaking:
            mixer.push(index, payloads[index][tick % 50])
        before = time.perf_counter()
        mixer.mix()
        mix_time += time.perf_counter() - before
    total = time.perf_counter() - start
    return total / ticks, mix_time / ticks


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"{'room':>5} {'talking':>8} {'push+mix us':>12} {'mix us':>8} {'% of a tick':>12}")
    for size in (3, 10, 50):
        for talkers in sorted({size, 3}):
            per_tick, mix_only = bench(size, talkers, ticks)
            share = 100.0 * per_tick / TICK_SECONDS
            print(
                f"{size:>5} {talkers:>8} {per_tick * 1e6:>12.1f} {mix_only * 1e6:>8.1f} "
                f"{share:>11.2f}%"
            )


if __name__ == "__main__":
    main()
