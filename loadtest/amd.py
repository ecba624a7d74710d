"""Answering-machine detection: accuracy and decision time on synthetic answers.

Builds a corpus with eSpeak NG: voicemail greetings (machines), short answers
("Hello?", "Yes, speaking." ...: humans) across voices and speeds, and fax
calling tones; each is put on a phone line (line noise, G.711 mu-law, 0% and 3%
of 20 ms packets lost) and run through media/amd.py frame by frame, as a call's
tap feeds it. Prints the share decided right (machines ``machine_start``,
humans ``human``, faxes ``fax``), the confusion table, the median and 90th
percentile decision time per kind, and the CPU one second of audio costs.
Targets (issue 21): at least 95% right and a median ``human`` decision within 3 s.

    python loadtest/amd.py             # the whole corpus (about 240 answers)
    python loadtest/amd.py --quick     # a tenth of it
    python loadtest/amd.py --json out.json

Needs espeak-ng. Exit status 0 when the targets are met, 1 when not.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
import wave
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from media.amd import AmdSettings, MachineDetector
from media.g711 import ulaw_decode, ulaw_encode

RATE = 8000
FRAME = 160
TARGET_ACCURACY = 0.95
TARGET_HUMAN_MEDIAN_MS = 3000

GREETINGS = (
    "Hi, you have reached {name}. I can't take your call right now, please leave a message "
    "after the tone.",
    "Hello, this is {name}. Sorry I missed you. Leave your name and number and I will get "
    "back to you as soon as I can.",
    "The person you are calling is not available. Please record your message after the tone. "
    "When you are finished, hang up.",
    "You have reached the voicemail box of {name}. Please leave a detailed message.",
    "Thank you for calling {name}. Our office is closed. Our hours are nine to five, "
    "Monday to Friday.",
    "Hey, it's {name}, leave a message!  Thanks, bye.",
    "Welcome. The number you have dialed is not answering. At the tone, please record "
    "your message.",
    "Hi, {name} here. I'm either on the other line or away from my desk. Leave a message.",
)
NAMES = ("Jordan Smith", "Anna", "the Miller family", "Doctor Patel", "Sam", "Acme Plumbing")
ANSWERS = (
    "Hello?",
    "Hi.",
    "Yes?",
    "Hello, this is Sam.",
    "Hey, who's this?",
    "Speaking.",
    "Yeah, hello?",
    "Good morning.",
    "Hello, yes?",
    "Hi there.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029+m3", "en-us+f5")
SPEEDS = (140, 165, 190)


@dataclass
class Answer:
    kind: str  # machine, human, fax
    expected: str
    label: str
    samples: np.ndarray


def say(text: str, voice: str, speed: int) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    index = (np.arange(int(samples.size * RATE / rate)) * rate / RATE).astype(int)
    return samples[index]


def cng(seconds: float = 8.0, dbfs: float = -10.0) -> np.ndarray:
    t = np.arange(RATE // 2) / RATE
    burst = 10 ** (dbfs / 20) * 32767 * np.sin(2 * np.pi * 1100 * t)
    cycle = np.concatenate([burst, np.zeros(3 * RATE)])
    return np.tile(cycle, int(np.ceil(seconds / 3.5)))[: int(seconds * RATE)].astype(np.int16)


def corpus(quick: bool) -> list[Answer]:
    answers: list[Answer] = []
    combos = [(v, s) for v in VOICES for s in SPEEDS]
    step = 10 if quick else 1
    for i, (voice, speed) in enumerate(combos):
        for j, template in enumerate(GREETINGS):
            if (i * len(GREETINGS) + j) % (2 * step):  # half the pairs: ~70 machines
                continue
            text = template.format(name=NAMES[(i + j) % len(NAMES)])
            answers.append(
                Answer("machine", "machine_start", f"{voice}/{speed}", say(text, voice, speed))
            )
        for j, text in enumerate(ANSWERS):
            if (i * len(ANSWERS) + j) % (2 * step):
                continue
            answers.append(
                Answer("human", "human", f"{voice}/{speed}: {text}", say(text, voice, speed))
            )
    for n in range(max(1, 10 // step)):
        answers.append(Answer("fax", "fax", f"cng {n}", cng(dbfs=-8.0 - 2 * n)))
    return answers


def on_the_line(answer: Answer, rng: np.random.Generator) -> np.ndarray:
    """Silence before it (0.2-1.0 s), 6 s after, line noise, through mu-law."""
    lead = np.zeros(int(RATE * rng.uniform(0.2, 1.0)), dtype=np.int16)
    tail = np.zeros(6 * RATE, dtype=np.int16)
    audio = np.concatenate([lead, answer.samples, tail]).astype(np.float64)
    audio += rng.normal(0, 10 ** (-60 / 20) * 32767, audio.size)
    clipped = np.clip(audio, -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(clipped))


def detect(audio: np.ndarray, loss: float, rng: np.random.Generator) -> tuple[str, int]:
    """The decision and its time in milliseconds of the call (lost packets are time
    that passed unheard: the detector is caught up on them as a call's tap is)."""
    detector = MachineDetector(AmdSettings())
    for n, start in enumerate(range(0, audio.size - FRAME + 1, FRAME)):
        call_ms = (n + 1) * 20.0
        if loss and rng.random() < loss:
            continue
        result = detector.feed(audio[start : start + FRAME], RATE)
        if result is None and detector.elapsed_ms < call_ms - 300:
            result = detector.catch_up(call_ms - 300)
        if result is not None:
            return result.answered_by, result.duration_ms
    result = detector.catch_up(60_000)
    assert result is not None
    return result.answered_by, result.duration_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not installed")
        return 2
    rng = np.random.default_rng(args.seed)
    answers = corpus(args.quick)
    kinds = Counter(a.kind for a in answers)
    print(f"corpus: {len(answers)} answers ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    report: dict[str, object] = {"scenario": "amd", "answers": len(answers)}
    met = True
    for loss in (0.0, 0.03):
        confusion: Counter[tuple[str, str]] = Counter()
        times: dict[str, list[int]] = {"machine": [], "human": [], "fax": []}
        wrong: list[str] = []
        audio_s = 0.0
        cpu = 0.0
        for answer in answers:
            audio = on_the_line(answer, rng)
            started = time.process_time()
            decided, ms = detect(audio, loss, rng)
            cpu += time.process_time() - started
            audio_s += ms / 1000
            confusion[answer.kind, decided] += 1
            if decided == answer.expected:
                times[answer.kind].append(ms)
            else:
                wrong.append(f"{answer.kind} {answer.label} -> {decided} at {ms} ms")
        right = sum(n for (kind, got), n in confusion.items() if got == _expected(kind))
        accuracy = right / len(answers)
        human_median = float(np.median(times["human"])) if times["human"] else float("inf")
        ok = accuracy >= TARGET_ACCURACY and human_median <= TARGET_HUMAN_MEDIAN_MS
        met = met and ok
        print(
            f"\n{loss:.0%} packet loss: {right}/{len(answers)} right = {accuracy:.1%} "
            f"(target {TARGET_ACCURACY:.0%})  {'PASS' if ok else 'FAIL'}"
        )
        for kind in ("machine", "human", "fax"):
            got = {g: n for (k, g), n in confusion.items() if k == kind}
            spread = "  ".join(f"{g} {n}" for g, n in sorted(got.items()))
            ms = times[kind]
            when = (
                f"median {np.median(ms):.0f} ms, p90 {np.percentile(ms, 90):.0f} ms"
                if ms
                else "no right answers"
            )
            print(f"  {kind:8s} {spread:50s} {when}")
        print(f"  human median decision {human_median:.0f} ms (target <= {TARGET_HUMAN_MEDIAN_MS})")
        print(f"  CPU {1e6 * cpu / max(audio_s, 1e-9):.0f} us per second of audio heard")
        for line in wrong[:8]:
            print(f"    wrong: {line}")
        report[f"loss_{int(loss * 100)}pct"] = {
            "accuracy": accuracy,
            "human_median_ms": human_median,
            "confusion": {f"{k}->{g}": n for (k, g), n in confusion.items()},
            "cpu_us_per_audio_s": 1e6 * cpu / max(audio_s, 1e-9),
            "wrong": wrong,
            "meets": ok,
        }
    print(f"\nverdict: {'targets met' if met else 'targets NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if met else 1


def _expected(kind: str) -> str:
    return {"machine": "machine_start", "human": "human", "fax": "fax"}[kind]


if __name__ == "__main__":
    sys.exit(main())
