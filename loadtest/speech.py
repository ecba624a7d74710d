"""Speech recognition: word error rate on synthesized phrases, and concurrent
recognizing calls on one core.

Corpus: eSpeak NG says digit sequences, yes/no answers and short IVR commands
in several voices and speeds; each phrase goes through G.711 mu-law at 8 kHz
(as a caller's words arrive), with 0% and 3% packet loss (a lost 20 ms packet
is missing audio, as the jitter buffer hands on no frame for it), between
silences, into the recognizer interface `<Gather input="speech">` uses
(`media.speech.StreamingRecognizer` over the embedded provider: voice-activity
endpointing, PocketSphinx in a worker process). Digits are recognized with
`hints="$OOV_CLASS_DIGIT_SEQUENCE"`, yes/no with `hints="yes, no, ..."`, as an
IVR asks for them; commands both with their hints and with the general
language model (no hints).

Unlike the other scenarios this drives the recognizer's public interface, not
a server over SIP: what is measured is recognition (accuracy, CPU), the part
the speech Gather adds to a call; the RTP path of a call is measured by
loadtest/bridge.py.

Capacity: N concurrent "calls" in this process, everything pinned to one core
(`taskset`; the worker process inherits it), each feeding 20 ms frames at real
time: a phrase, then silence until the endpointer ends it, and again. A level
holds when the results come back within 1.5 s (p95) of the end of speech and
no frame is dropped.

    python loadtest/speech.py                 # the corpus, then 10, 25, 50, 75 calls
    python loadtest/speech.py --quick         # a few phrases, 5 and 10 calls
    python loadtest/speech.py --no-amd --no-capacity --seed 1234 --voices en+m5,en-us+f1
                                              # held out: other digit strings and voices

Bounded in time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import amd  # noqa: E402
from media.audio_file import decode_audio  # noqa: E402
from media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from media.speech import (  # noqa: E402
    EmbeddedSpeech,
    RecognitionOptions,
    StreamingRecognizer,
)

VOICES = ("en-us", "en-us+f3", "en-us+m3", "en")
SPEEDS = (130, 160, 190)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
YES_NO = ("yes", "no", "yes please", "no thanks")
COMMANDS = (
    "speak to an agent",
    "check my balance",
    "pay my bill",
    "cancel my order",
    "technical support",
    "billing question",
    "repeat that",
    "main menu",
)
DIGIT_HINTS = ("$OOV_CLASS_DIGIT_SEQUENCE",)
YES_NO_HINTS = ("yes", "no", "yes please", "no thanks")
FRAME = 160
MAX_LATENCY_S = 1.5  # from the end of the pause that ends the words to the result


@dataclass
class Utterance:
    kind: str
    text: str
    voice: str
    speed: int
    audio: np.ndarray  # 8 kHz int16 after G.711


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed)],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return ulaw_decode(ulaw_encode(np.asarray(decode_audio(wav), dtype=np.int16)))


def corpus(quick: bool, seed: int = 21, voices: tuple[str, ...] = VOICES) -> list[Utterance]:
    """The phrases; another ``seed`` draws other digit strings, other ``voices``
    (eSpeak NG's, e.g. ``en+m5``) say them (held-out checks of what was tuned here)."""
    rng = random.Random(seed)
    digit_phrases = [
        " ".join(rng.choice(DIGITS) for _ in range(rng.randint(3, 5))) for _ in range(6)
    ]
    kinds = [("digits", digit_phrases), ("yes/no", list(YES_NO)), ("commands", list(COMMANDS))]
    voices, speeds = (voices[:2], SPEEDS[1:2]) if quick else (voices, SPEEDS)
    out = []
    for (kind, phrases), voice, speed in itertools.product(kinds, voices, speeds):
        for text in phrases[:2] if quick else phrases:
            out.append(Utterance(kind, text, voice, speed, speak(text, voice, speed)))
    return out


def with_loss(audio: np.ndarray, loss: float, rng: random.Random) -> np.ndarray:
    frames = [audio[i : i + FRAME] for i in range(0, audio.size - audio.size % FRAME, FRAME)]
    return np.concatenate([f for f in frames if rng.random() >= loss])


def padded(audio: np.ndarray, lead_s: float = 0.5, tail_s: float = 1.2) -> np.ndarray:
    return np.concatenate(
        [np.zeros(int(lead_s * 8000), np.int16), audio, np.zeros(int(tail_s * 8000), np.int16)]
    )


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference words)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)], len(ref)


def hints_for(kind: str, with_hints: bool) -> tuple[str, ...]:
    if not with_hints:
        return ()
    return {"digits": DIGIT_HINTS, "yes/no": YES_NO_HINTS, "commands": COMMANDS}[kind]


async def recognize(speech: EmbeddedSpeech, audio: np.ndarray, hints: tuple[str, ...]) -> str:
    options = RecognitionOptions(hints=hints, end_silence_s=0.8, no_input_s=5.0)
    recognizer = StreamingRecognizer(speech, options)
    for start in range(0, audio.size, FRAME * 5):
        recognizer.feed(audio[start : start + FRAME * 5])
        await asyncio.sleep(0)
    recognizer.end()
    result = await asyncio.wait_for(recognizer.result, 60)
    return result.text if result is not None else ""


async def measure_wer(utterances: list[Utterance]) -> list[tuple[str, float, float, int]]:
    speech = EmbeddedSpeech(workers=max(1, (os.cpu_count() or 1) - 1))
    rows = []
    try:
        await speech.warm()
        runs = [("digits", True), ("yes/no", True), ("commands", True), ("commands", False)]
        for (kind, with_hints), loss in itertools.product(runs, (0.0, 0.03)):
            rng = random.Random(3)
            errors = words = found = 0
            for u in (u for u in utterances if u.kind == kind):
                audio = padded(with_loss(u.audio, loss, rng))
                text = await recognize(speech, audio, hints_for(kind, with_hints))
                e, n = word_errors(u.text, text)
                errors, words = errors + e, words + n
                found += sum(1 for word in u.text.split() if word in text.split())
            label = kind + ("" if with_hints else " (no hints)")
            rows.append((label, loss, errors / max(words, 1), words))
            recall = found / max(words, 1)  # spoken words found in the result
            print(
                f"  {label:22} loss {loss:4.0%}  WER {errors / max(words, 1):6.1%}  "
                f"recall {recall:6.1%}  ({words} words)"
            )
        cpu, audio_s = await speech.stats()
        print(f"  CPU per second of audio decoded: {cpu / max(audio_s, 1e-9):.3f}")
    finally:
        speech.close()
    return rows


async def caller(speech, audio: np.ndarray, hints, stop_at: float, latencies, loop) -> int:
    """Speak, wait for the result, again, at real time; returns utterances done."""
    done = 0
    frames = padded(audio, 0.3, 1.2)
    last_sound = int(np.nonzero(np.abs(audio) > 300)[0][-1])  # eSpeak ends in silence
    while loop.time() < stop_at:
        options = RecognitionOptions(hints=hints, end_silence_s=0.8, no_input_s=5.0)
        recognizer = StreamingRecognizer(speech, options)
        start = loop.time()
        for n, begin in enumerate(range(0, frames.size, FRAME)):
            if recognizer.result.done():
                break
            recognizer.feed(frames[begin : begin + FRAME])
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))
        speech_end = start + 0.3 + last_sound / 8000 + 0.8  # the words, then the pause
        recognizer.end()
        try:
            await asyncio.wait_for(recognizer.result, 30)
        except TimeoutError:
            latencies.append(float("inf"))  # counts against the level
            return done
        latencies.append(loop.time() - speech_end)
        done += 1
    return done


async def measure_capacity(calls: int, seconds: float, sample: Utterance, hints) -> dict:
    speech = EmbeddedSpeech(workers=1, decoders_per_worker=8)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    try:
        await speech.warm()
        cpu0 = time.process_time()
        cpu_before, audio_before = await speech.stats()
        stop_at = loop.time() + seconds
        done = await asyncio.gather(
            *(caller(speech, sample.audio, hints, stop_at, latencies, loop) for _ in range(calls))
        )
        cpu, audio_s = await speech.stats()
        main_cpu = time.process_time() - cpu0
    finally:
        speech.close()
    finite = sorted(latencies)
    p95 = finite[min(len(finite) - 1, int(0.95 * len(finite)))] if finite else float("inf")
    return {
        "calls": calls,
        "utterances": sum(done),
        "p50": statistics.median(latencies) if latencies else float("inf"),
        "p95": p95,
        "decoder_cpu": (cpu - cpu_before) / seconds,
        "loop_cpu": main_cpu / seconds,
        "dropped": speech.dropped_samples,
        "ok": p95 <= MAX_LATENCY_S and speech.dropped_samples == 0,
        "audio": audio_s - audio_before,
        # CPU a recognizing call costs per second (decoder and event loop): 1 / this
        # is the calls a core would carry if nothing else ran on it.
        "per_call": ((cpu - cpu_before) + main_cpu) / (calls * seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--levels", type=int, nargs="*", default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--no-wer", action="store_true")
    parser.add_argument("--no-amd", action="store_true", help="skip answering-machine detection")
    parser.add_argument("--no-capacity", action="store_true")
    parser.add_argument("--cpu", type=int, default=0, help="the core capacity runs on")
    parser.add_argument("--seed", type=int, default=21, help="draws the digit strings")
    parser.add_argument(
        "--voices", default=",".join(VOICES), help="eSpeak NG voices, comma-separated"
    )
    args = parser.parse_args(argv)
    utterances = corpus(args.quick, args.seed, tuple(args.voices.split(",")))
    print(f"corpus: {len(utterances)} phrases x 2 loss conditions")
    if not args.no_wer:
        asyncio.run(measure_wer(utterances))
    if not args.no_amd:  # loadtest/amd.py: its corpus, accuracy and decision times
        print("answering-machine detection:")
        amd.main(["--quick"] if args.quick else [])
    if args.no_capacity:
        return 0
    os.sched_setaffinity(0, {args.cpu})  # this process and the worker it spawns: one core
    levels = args.levels or ([5, 10] if args.quick else [10, 25, 50, 75])
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    sample = next(u for u in utterances if u.kind == "yes/no")
    for hints, label in ((YES_NO_HINTS, "yes/no with hints"), ((), "language model")):
        print(f"capacity on CPU {args.cpu} ({label}, '{sample.text}' then a pause, real time):")
        for calls in levels:
            r = asyncio.run(measure_capacity(calls, seconds, sample, hints))
            print(
                f"  {calls:3} calls: {r['utterances']:4} results, latency after speech "
                f"p50 {r['p50']:.2f} s p95 {r['p95']:.2f} s, decoder {r['decoder_cpu']:.0%} "
                f"+ loop {r['loop_cpu']:.0%} of the core, dropped {r['dropped']}: "
                f"{'holds' if r['ok'] else 'does not hold'}; CPU per call "
                f"{r['per_call']:.3f}/s (a free core: ~{1 / max(r['per_call'], 1e-9):.0f} calls)"
            )
            if not r["ok"]:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
