"""The embedded speech provider: PocketSphinx in worker processes, off the event loop.

The decoder holds the GIL for as long as it works (tens of milliseconds for a
tenth of a second of audio), so it cannot run on a thread of the process that
keeps the media clock: it runs in ``workers`` processes (default: one per
core), each a one-process pool whose jobs run in order. An utterance is pinned
to the process with the fewest utterances in flight and keeps a decoder there
from its first audio to its end.

Each utterance is a :class:`EmbeddedSession`: ``push`` only appends to a
bounded buffer (``MAX_PENDING_S`` of audio; a recording pushed ``whole``, up to
``MAX_BUFFER_S``; more is dropped and counted) and
wakes the session's task, which sends what has gathered to its process in one
job, waits, and repeats: a slow process gets bigger chunks, never a backlog of
jobs. At most ``decoders_per_worker`` utterances hold a decoder in each process
(a decoder is about 90 MB); more wait, their audio buffered, for one to free.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import numpy as np

from media.speech import worker
from media.speech.types import (
    Hypothesis,
    RecognitionOptions,
    RecognitionSession,
    Samples,
    SpeechError,
)

__all__ = ["EmbeddedSession", "EmbeddedSpeech"]

MAX_PENDING_S = 10.0
MAX_BUFFER_S = 180.0  # the longest audio a session holds undecoded (a transcribed recording)
_T = TypeVar("_T")


class _Worker:
    def __init__(self) -> None:
        self.executor = _new_executor()
        self.active = 0

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, function, *args)
        except BrokenProcessPool as exc:
            self.executor = _new_executor()  # the next utterance gets a fresh process
            raise SpeechError("the speech worker process died") from exc

    def submit(self, function: Callable[..., object], *args: Any) -> None:
        with contextlib.suppress(RuntimeError, BrokenProcessPool):
            self.executor.submit(function, *args)


def _new_executor() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


class EmbeddedSpeech:
    """The ``embedded`` provider (:class:`media.speech.types.SpeechProvider`)."""

    name = "embedded"

    def __init__(
        self, workers: int = 1, decoders_per_worker: int = 4, sample_rate: int = 8000
    ) -> None:
        if workers < 1 or decoders_per_worker < 1:
            raise ValueError("workers and decoders_per_worker must be at least 1")
        self.sample_rate = sample_rate
        self.decoders_per_worker = decoders_per_worker
        self._workers = [_Worker() for _ in range(workers)]
        self._slots = asyncio.Semaphore(workers * decoders_per_worker)
        self._ids = itertools.count(1)
        self.dropped_samples = 0  # audio that arrived while the buffer was full

    def open(self, options: RecognitionOptions) -> RecognitionSession:
        return EmbeddedSession(self, options)

    async def warm(self) -> None:
        """Start the worker processes and load a decoder in each."""
        await asyncio.gather(*(w.run(worker.warm, self.sample_rate) for w in self._workers))

    async def stats(self) -> tuple[float, float]:
        """(CPU seconds spent decoding, seconds of audio decoded), all processes."""
        totals = await asyncio.gather(*(w.run(worker.stats) for w in self._workers))
        return sum(t[0] for t in totals), sum(t[1] for t in totals)

    def close(self) -> None:
        for each in self._workers:
            each.executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[_Worker]:
        async with self._slots:
            chosen = min(self._workers, key=lambda w: w.active)
            chosen.active += 1
            try:
                yield chosen
            finally:
                chosen.active -= 1

    def _next_id(self) -> int:
        return next(self._ids)


class EmbeddedSession:
    """One utterance on the embedded recognizer."""

    def __init__(self, speech: EmbeddedSpeech, options: RecognitionOptions) -> None:
        self.on_partial: Callable[[Hypothesis], None] | None = None
        self._speech = speech
        self._options = options
        self._pending: list[Samples] = []
        self._pending_samples = 0
        # A live call's audio waits at most MAX_PENDING_S for the decoder; a recording
        # pushed whole (a transcription) waits all of it, up to MAX_BUFFER_S.
        limit_s = min(options.max_speech_s, MAX_BUFFER_S) if options.whole else MAX_PENDING_S
        self._limit = int(limit_s * speech.sample_rate)
        self._wake = asyncio.Event()
        self._ending = False
        self._previous: list[str] = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    def push(self, samples: Samples) -> None:
        if self._ending:
            return
        if self._pending_samples + samples.size > self._limit:
            self._speech.dropped_samples += samples.size
            return
        self._pending.append(samples)
        self._pending_samples += samples.size
        self._wake.set()

    async def finish(self) -> Hypothesis:
        self._ending = True
        self._wake.set()
        return await self._task

    def cancel(self) -> None:
        self._ending = True
        self._task.cancel()

    async def _run(self) -> Hypothesis:
        async with self._speech._slot() as chosen:
            utterance = self._speech._next_id()
            await chosen.run(worker.begin, utterance, self._speech.sample_rate, self._options.hints)
            try:
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    if self._pending:
                        chunk = np.concatenate(self._pending)
                        self._pending.clear()
                        self._pending_samples = 0
                        text = await chosen.run(worker.process, utterance, chunk.tobytes())
                        self._partial(text)
                    if self._ending and not self._pending:
                        break
                return await chosen.run(worker.end, utterance)
            except BaseException:
                chosen.submit(worker.abort, utterance)  # after the job in flight, in order
                raise

    def _partial(self, text: str) -> None:
        words = text.split()
        if self.on_partial is None or not words or words == self._previous:
            return
        stable = 0
        for old, new in zip(self._previous, words, strict=False):
            if old != new:
                break
            stable += 1
        self._previous = words
        self.on_partial(Hypothesis(text, 0.0, final=False, stability=round(stable / len(words), 3)))
