"""The node's speech recognizer (``--speech-provider``) as the voice runtime's other
features take it: utterance after utterance of a live call (ConversationRelay, live
transcription: :func:`listeners`) and a finished recording's words (``<Record
transcribe>``: :func:`transcriber`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import numpy as np

from control_api.voice.listening import Heard, ListenerFactory, OnPartial
from control_api.voice.transcription import Transcriber
from media.resample import Resampler
from media.speech import RecognitionOptions, SpeechProvider, StreamingRecognizer

__all__ = ["LISTEN_FOR_S", "listeners", "transcriber"]

LISTEN_FOR_S = 120.0  # a live call's listener waits this long for speech, then starts anew
CHUNK = 8000  # samples pushed to a recognition session at a time (1 s at 8 kHz)


class _Listening:
    """A :class:`StreamingRecognizer` as a :class:`~control_api.voice.listening.Listener`."""

    def __init__(self, recognizer: StreamingRecognizer) -> None:
        self.recognizer = recognizer
        # A Hypothesis has the text and confidence a Heard has (Future is invariant).
        self.result = cast("asyncio.Future[Heard | None]", recognizer.result)

    def feed(self, samples: np.ndarray) -> None:
        self.recognizer.feed(samples)

    def cancel(self) -> None:
        self.recognizer.close()


def listeners(provider: SpeechProvider) -> ListenerFactory:
    """Listeners of one utterance each, on ``provider``: the end of speech found by
    voice activity (``speechTimeout="auto"``), hints as the recognizer's; partial
    results go to ``on_partial`` when one is given."""

    def listen(
        language: str,
        hints: str | None,
        on_speech: Callable[[], None],
        on_partial: OnPartial | None = None,
    ) -> _Listening:
        options = RecognitionOptions(
            language=language,
            hints=tuple(h.strip() for h in (hints or "").split(",") if h.strip()),
            end_silence_s=None,
            no_input_s=LISTEN_FOR_S,
            partials=on_partial is not None,
        )
        recognizer = StreamingRecognizer(
            provider, options, on_speech=on_speech, on_partial=on_partial
        )
        return _Listening(recognizer)

    return listen


def transcriber(provider: SpeechProvider, language: str = "en-US") -> Transcriber:
    """The words of a whole recording, in one recognition session."""

    async def transcribe(samples: np.ndarray, rate: int) -> str:
        if rate != provider.sample_rate:
            samples = Resampler(rate, provider.sample_rate).process(samples)
        whole = samples.size / provider.sample_rate + 1.0  # seconds: the session holds all
        options = RecognitionOptions(language=language, max_speech_s=whole, whole=True)
        session = provider.open(options)
        try:
            for start in range(0, samples.size, CHUNK):
                session.push(samples[start : start + CHUNK])
            return (await session.finish()).text
        except BaseException:
            session.cancel()
            raise

    return transcribe
