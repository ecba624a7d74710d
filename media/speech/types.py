"""What a recognizer is asked and what it answers: options in, hypotheses out.

A :class:`SpeechProvider` opens one :class:`RecognitionSession` per utterance
(the stretch of audio the voice-activity endpointer found, see
:mod:`media.speech.recognizer`). The session is fed 16-bit PCM as it arrives,
on the event loop, and must never block it; it may report partial hypotheses
through ``on_partial`` and answers the final one from :meth:`finish`.
A provider that cannot recognize raises :class:`SpeechError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "Hypothesis",
    "RecognitionOptions",
    "RecognitionSession",
    "SpeechError",
    "SpeechProvider",
]

Samples = npt.NDArray[np.int16]


class SpeechError(RuntimeError):
    """The provider could not recognize the utterance (unreachable, refused, garbage)."""


@dataclass(frozen=True, slots=True)
class RecognitionOptions:
    """One recognition's settings, from ``<Gather>``'s attributes.

    ``hints`` are phrases (Twilio's comma-separated ``hints``); ``end_silence_s`` is
    the pause that ends an utterance (``speechTimeout``; None for ``auto``);
    ``no_input_s`` how long to wait for speech to start (``timeout``);
    ``max_speech_s`` the longest utterance (``maxSpeechTime``); ``whole``: all of the
    audio is pushed at once (a recording to transcribe), so a provider holds it all
    rather than only what a live call sends while the decoder catches up.
    """

    language: str = "en-US"
    hints: tuple[str, ...] = ()
    end_silence_s: float | None = None
    no_input_s: float = 5.0
    max_speech_s: float = 60.0
    partials: bool = False
    model: str | None = None
    whole: bool = False


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """Recognized words; ``confidence`` in [0, 1]; ``stability`` for a partial."""

    text: str
    confidence: float
    final: bool = True
    stability: float = 0.0


class RecognitionSession(Protocol):
    """One utterance being recognized."""

    on_partial: Callable[[Hypothesis], None] | None

    def push(self, samples: Samples) -> None:
        """Audio of the utterance at the session's rate; never blocks."""

    async def finish(self) -> Hypothesis:
        """The utterance ended: its final hypothesis (raises :class:`SpeechError`)."""

    def cancel(self) -> None:
        """Abandon the utterance (the call went away): free what it holds."""


class SpeechProvider(Protocol):
    """A recognizer: the embedded one or a remote service."""

    name: str
    sample_rate: int  # what push() takes: 8000 or 16000

    def open(self, options: RecognitionOptions) -> RecognitionSession: ...
