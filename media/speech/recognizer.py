"""A streaming recognizer: caller audio in, endpointed utterance, hypotheses out.

:class:`StreamingRecognizer` runs on the event loop and stays cheap there: it
cuts the caller's 8 kHz audio into 20 ms frames, asks the voice-activity
detector about each (:mod:`media.speech.vad`), and lets the
:class:`~media.speech.endpointer.Endpointer` decide where the utterance starts
and ends. Only then does a provider see audio: at speech start a
:class:`~media.speech.types.RecognitionSession` opens and gets the
``PRE_ROLL_S`` before it, then every frame until the end (unvoiced frames are
held back until speech resumes, and of the closing pause only ``HANG_S`` is
sent); at the end it is asked for the final hypothesis. ``result`` resolves to that hypothesis, to
None when nobody spoke, or to the provider's :class:`SpeechError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np

from media.resample import Resampler
from media.speech.endpointer import PRE_ROLL_S, Endpoint, Endpointer
from media.speech.types import (
    Hypothesis,
    RecognitionOptions,
    RecognitionSession,
    Samples,
    SpeechError,
    SpeechProvider,
)
from media.speech.vad import VoiceActivityDetector

__all__ = ["RATE", "StreamingRecognizer"]

RATE = 8000  # what feed() takes
FRAME = RATE // 50  # 20 ms
FRAME_S = FRAME / RATE
HANG_S = 0.2  # of the closing pause, what the provider hears


class StreamingRecognizer:
    """Recognizes one utterance from a stream of 8 kHz int16 samples."""

    def __init__(
        self,
        provider: SpeechProvider,
        options: RecognitionOptions,
        *,
        on_speech: Callable[[], None] | None = None,
        on_partial: Callable[[Hypothesis], None] | None = None,
    ) -> None:
        self.provider = provider
        self.options = options
        self.on_speech = on_speech  # speech started (barge-in)
        self.on_partial = on_partial
        self.endpointer = Endpointer(
            options.end_silence_s, options.no_input_s, options.max_speech_s
        )
        self._vad = VoiceActivityDetector(RATE)
        self._carry = np.zeros(0, dtype=np.int16)
        self._pre_roll: deque[Samples] = deque(maxlen=int(PRE_ROLL_S / FRAME_S))
        self._held: list[Samples] = []  # unvoiced frames since the last voiced one
        self._upsample = Resampler(RATE, provider.sample_rate)
        self._session: RecognitionSession | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.fed_at = self._loop.time()  # when audio last came (the loop's clock)
        self.result: asyncio.Future[Hypothesis | None] = self._loop.create_future()

    @property
    def speaking(self) -> bool:
        return self.endpointer.speaking

    def feed(self, samples: Samples) -> None:
        """The caller's next audio, any length."""
        self.fed_at = self._loop.time()
        if self.result.done() or self._finishing is not None:
            return
        if self._carry.size:
            samples = np.concatenate((self._carry, samples))
        whole = samples.size - samples.size % FRAME
        self._carry = samples[whole:]
        for start in range(0, whole, FRAME):
            self._frame(samples[start : start + FRAME])
            if self._finishing is not None or self.result.done():
                return

    def _frame(self, frame: Samples) -> None:
        voiced = self._vad.is_speech(frame)
        endpoint = self.endpointer.feed(voiced, FRAME_S)
        if endpoint is Endpoint.STARTED:
            self._open()
            assert self._session is not None
            for earlier in self._pre_roll:
                self._push(earlier)
            self._pre_roll.clear()
        if self._session is None:
            self._pre_roll.append(frame)
        elif voiced:
            for held in self._held:  # a pause inside the utterance: it is heard
                self._push(held)
            self._held.clear()
            self._push(frame)
        else:
            self._held.append(frame)  # the pause that may end it: held back
        if endpoint is Endpoint.ENDED:
            self.end()
        elif endpoint is Endpoint.NO_INPUT:
            self.result.set_result(None)

    def _open(self) -> None:
        session = self.provider.open(self.options)
        session.on_partial = self.on_partial
        self._session = session
        if self.on_speech is not None:
            self.on_speech()

    def _push(self, frame: Samples) -> None:
        assert self._session is not None
        self._session.push(
            self._upsample.process(frame) if self.provider.sample_rate != RATE else frame
        )

    def end(self) -> None:
        """End now (the call's timers ran out): what was heard is recognized."""
        if self.result.done() or self._finishing is not None:
            return
        if self._session is None:
            self.result.set_result(None)
            return
        self._release_hang()
        self._finishing = asyncio.get_running_loop().create_task(self._finish(self._session))

    def _release_hang(self) -> None:
        """At the end: only ``HANG_S`` of the closing pause reaches the provider (the
        rest is silence a decoder would only make up words from)."""
        assert self._session is not None
        for held in list(self._held)[: round(HANG_S / FRAME_S)]:
            self._push(held)
        self._held.clear()

    async def _finish(self, session: RecognitionSession) -> None:
        try:
            hypothesis = await session.finish()
        except SpeechError as exc:
            if not self.result.done():
                self.result.set_exception(exc)
            return
        except Exception as exc:  # a provider's bug is a failed recognition, not a hung call
            if not self.result.done():
                self.result.set_exception(SpeechError(f"{type(exc).__name__}: {exc}"))
            return
        if not self.result.done():
            self.result.set_result(hypothesis)

    def close(self) -> None:
        """Abandon recognition (the Gather ended another way, the call went)."""
        if self._finishing is not None:
            self._finishing.cancel()
        elif self._session is not None:
            self._session.cancel()
        if not self.result.done():
            self.result.cancel()
