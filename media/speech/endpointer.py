"""Endpointing: where an utterance starts and ends, from per-frame voice activity.

A pure state machine (no clock, no I/O): it is told, frame by frame, whether the
frame is voiced (:mod:`media.speech.vad`) and how long the frame is, and answers
what happened. Speech starts after ``START_FRAMES`` voiced frames among the last
``START_WINDOW`` (a click or a cough of one frame is not speech); it ends after
``end_silence_s`` of unvoiced frames (``speechTimeout``; ``AUTO_END_SILENCE_S``
for ``auto``) or once it has lasted ``max_speech_s``. No speech within
``no_input_s`` is a timeout.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

__all__ = ["AUTO_END_SILENCE_S", "Endpoint", "Endpointer"]

AUTO_END_SILENCE_S = 1.0  # speechTimeout="auto": a natural pause ends the sentence
START_WINDOW = 5  # frames (100 ms of 20 ms frames)
START_FRAMES = 3  # voiced frames among them that make speech
PRE_ROLL_S = 0.3  # audio kept from before the start (the first phoneme's onset)


class Endpoint(Enum):
    STARTED = "started"  # speech began: the utterance includes the pre-roll
    ENDED = "ended"  # the pause after speech was long enough (or max_speech_s passed)
    NO_INPUT = "no-input"  # no speech within no_input_s


class Endpointer:
    def __init__(
        self, end_silence_s: float | None, no_input_s: float, max_speech_s: float = 60.0
    ) -> None:
        self.end_silence_s = AUTO_END_SILENCE_S if end_silence_s is None else end_silence_s
        self.no_input_s = no_input_s
        self.max_speech_s = max_speech_s
        self._recent: deque[bool] = deque(maxlen=START_WINDOW)
        self.waited_s = 0.0  # before speech
        self.spoken_s = 0.0  # since speech started
        self.silent_s = 0.0  # unvoiced run since the last voiced frame
        self.speaking = False
        self.done: Endpoint | None = None

    def feed(self, voiced: bool, duration_s: float) -> Endpoint | None:
        """Take one frame; returns an endpoint when one is reached, once each."""
        if self.done is not None:
            return None
        if not self.speaking:
            self._recent.append(voiced)
            self.waited_s += duration_s
            if sum(self._recent) >= START_FRAMES:
                self.speaking = True
                return Endpoint.STARTED
            if self.waited_s >= self.no_input_s:
                self.done = Endpoint.NO_INPUT
                return self.done
            return None
        self.spoken_s += duration_s
        self.silent_s = 0.0 if voiced else self.silent_s + duration_s
        if self.silent_s >= self.end_silence_s or self.spoken_s >= self.max_speech_s:
            self.done = Endpoint.ENDED
            return self.done
        return None
