"""One direction of a call's audio to the node's speech recognizer, an utterance at a time.

ConversationRelay and live transcription both hear a call this way: frames from a
leg's tap (G.711, decoded here) go to the recognizer the runtime provides
(``VoiceContext.speech_listener``: the speech layer's streaming recognizer, which
endpoints by voice activity), and :meth:`Ears.utterance` answers each utterance's
words in turn; with ``on_partial`` the words so far are told as the caller speaks
(when the recognizer gives partial results: the embedded one does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import numpy as np

from media.g711 import alaw_decode, ulaw_decode
from media.leg import Frame

__all__ = ["Ears", "Heard", "Listener", "ListenerFactory", "OnPartial"]

_DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}


class Heard(Protocol):
    """What the recognizer made of an utterance (the speech layer's hypothesis)."""

    @property
    def text(self) -> str: ...

    @property
    def confidence(self) -> float: ...  # 0 to 1


class Listener(Protocol):
    """One utterance of the caller being recognized (the speech layer's recognizer)."""

    @property
    def result(self) -> asyncio.Future[Heard | None]: ...  # None: nothing was said

    def feed(self, samples: np.ndarray) -> None:
        """The next audio: 8 kHz 16-bit mono."""

    def cancel(self) -> None:
        """Stop listening."""


OnPartial = Callable[[Heard], None]  # the words so far of the utterance being spoken


class ListenerFactory(Protocol):
    """(language, hints, on_speech: speech started, on_partial) -> a listener for one
    utterance."""

    def __call__(
        self,
        language: str,
        hints: str | None,
        on_speech: Callable[[], None],
        on_partial: OnPartial | None = None,
    ) -> Listener: ...


class Ears:
    """Utterance after utterance of one direction of a call."""

    def __init__(
        self,
        factory: ListenerFactory,
        language: str,
        hints: str | None = None,
        on_speech: Callable[[], None] | None = None,
        on_partial: OnPartial | None = None,
    ) -> None:
        self.factory = factory
        self.language = language
        self.hints = hints
        self.on_speech = on_speech or (lambda: None)
        self.on_partial = on_partial
        self.listener: Listener | None = None

    def hear(self, frame: Frame) -> None:
        """A frame of this direction (a tap's)."""
        decode = _DECODERS.get(frame.codec)
        if decode is not None and self.listener is not None:
            self.listener.feed(decode(frame.payload))

    async def utterance(self) -> Heard | None:
        """What was heard of the next utterance (None: nobody spoke before the
        recognizer gave up waiting); raises what the recognizer raises."""
        if self.on_partial is None:
            self.listener = self.factory(self.language, self.hints, self.on_speech)
        else:
            self.listener = self.factory(
                self.language, self.hints, self.on_speech, on_partial=self.on_partial
            )
        return await self.listener.result

    def cancel(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
