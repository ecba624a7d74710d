"""The WebRTC leg alone: CPU per call of N WebRtcLeg pairs talking over loopback.

One process, one core (pinned to CPU 1 unless --cpu says otherwise): N pairs of
:class:`signaling.webrtc_leg.WebRtcLeg`, each pair a full ICE + DTLS-SRTP
connection, both ends sending a looped tone at 50 frames/s and counting what
arrives. CPU time (not wall time) per call-second is what a leg costs; as both
ends of a pair are legs, one leg costs half of a pair. Less sensitive to other
load on the machine than loadtest/webrtc.py, since it counts CPU seconds used.

    python loadtest/bench_webrtc_leg.py --calls 20 --seconds 10 [--opus] [--no-direct]

A leg whose payloads pass untouched does no audio coding at all; in a call the
bridge then transcodes where the other side's codec differs (Opus to a PCMU
phone), which this benchmark leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from media.clock import MediaClock  # noqa: E402
from media.g711 import ulaw_encode  # noqa: E402
from signaling.webrtc_leg import WebRtcLeg, use_host_addresses  # noqa: E402


def _tone_source(codec: str):
    """Looped 440 Hz in the leg's codec (an untouched Opus leg takes Opus payloads)."""
    if codec == "PCMU":
        t = np.arange(8000) / 8000
        tone = ulaw_encode((0.25 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))
        frames = itertools.cycle([tone[i : i + 160] for i in range(0, 8000, 160)])
    else:
        from media.codecs import encoder

        encode = encoder(codec)
        t = np.arange(encode.sample_rate) / encode.sample_rate
        wave = (0.25 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        size = encode.frame_samples
        frames = itertools.cycle(
            [encode.encode(wave[i : i + size]) for i in range(0, len(wave), size)]
        )
    return lambda: next(frames)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(calls: int, seconds: float, opus: bool, direct: bool, paced: bool) -> None:
    use_host_addresses(["127.0.0.1"])
    clock = MediaClock() if paced else None
    pairs = []
    for _ in range(calls):
        a = WebRtcLeg(direct_pcmu=direct, direct_opus=direct, clock=clock)
        b = WebRtcLeg(direct_pcmu=direct, direct_opus=direct, clock=clock)
        counts = [0, 0]
        a.on_frame = lambda f, c=counts: c.__setitem__(0, c[0] + 1)
        b.on_frame = lambda f, c=counts: c.__setitem__(1, c[1] + 1)
        offer = await a.create_offer(prefer_pcmu=not opus)
        await a.accept_answer(await b.answer_offer(offer, prefer_pcmu=not opus))
        a.source, b.source = _tone_source(a.codec), _tone_source(b.codec)
        pairs.append((a, b, counts))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(c[0] and c[1] for _, _, c in pairs):
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    before = [list(c) for _, _, c in pairs]
    cpu0, t0 = _cpu(), time.monotonic()
    lags: list[float] = []

    async def watch_loop() -> None:
        """How late a 10 ms sleep wakes: the loop's stalls, which make the clock skip."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.010)
            lags.append(time.monotonic() - started - 0.010)

    watcher = asyncio.ensure_future(watch_loop())
    await asyncio.sleep(seconds)
    watcher.cancel()
    cpu, elapsed = _cpu() - cpu0, time.monotonic() - t0
    after = [list(c) for _, _, c in pairs]
    expected = 50 * elapsed
    rx = [(a[0] - b[0]) / expected for a, b in zip(after, before, strict=True)]
    rx += [(a[1] - b[1]) / expected for a, b in zip(after, before, strict=True)]
    codec = pairs[0][0].browser_codec if pairs else "?"
    print(
        f"{calls} pairs, {codec}{', payloads untouched' if direct else ', decoded by aiortc'}"
        f"{', clock-paced' if paced else ''}: {100 * cpu / elapsed:.0f}% of a core; "
        f"per leg {100 * cpu / elapsed / (2 * calls):.2f}% "
        f"(~{int(elapsed / cpu * 2 * calls) if cpu else 0} legs per core); "
        f"frames received min {100 * min(rx):.1f}% median {100 * float(np.median(rx)):.1f}%; "
        f"loop lag p99 {1000 * float(np.percentile(lags, 99)):.1f} ms, "
        f"max {1000 * max(lags):.1f} ms, {sum(lag > 0.1 for lag in lags)} stalls > 100 ms"
    )
    for a, b, _ in pairs:
        a.close()
        b.close()
    await asyncio.sleep(0.5)
    if clock is not None:
        clock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--opus", action="store_true")
    parser.add_argument("--no-direct", action="store_true", help="let aiortc decode and encode")
    parser.add_argument("--no-clock", action="store_true", help="a sleep per frame per leg")
    parser.add_argument("--cpu", type=int, default=1)
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {args.cpu})
    import uvloop

    uvloop.run(run(args.calls, args.seconds, args.opus, not args.no_direct, not args.no_clock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
