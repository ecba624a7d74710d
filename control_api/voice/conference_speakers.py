"""Who is speaking in a conference, for its ``speaker`` status callbacks
(``participant-speech-start`` and ``participant-speech-stop``).

Pure: each 20 ms tick feeds a participant's peak sample (media/mixer.py's
``Mixer.level``); speech starts after ``START_TICKS`` loud ticks in a row and stops
after ``STOP_TICKS`` quiet ones, so a word's gaps do not flap.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOUD", "START_TICKS", "STOP_TICKS", "SpeechDetector"]

LOUD = 1000  # peak of a 16-bit sample: about -30 dBFS
START_TICKS = 3  # 60 ms of sound
STOP_TICKS = 25  # 500 ms of quiet


@dataclass(slots=True)
class SpeechDetector:
    speaking: bool = False
    _run: int = 0  # ticks in a row against the current state

    def tick(self, peak: int) -> bool | None:
        """True when speech starts at this tick, False when it stops, else None."""
        against = peak < LOUD if self.speaking else peak >= LOUD
        self._run = self._run + 1 if against else 0
        if self._run >= (STOP_TICKS if self.speaking else START_TICKS):
            self.speaking = not self.speaking
            self._run = 0
            return self.speaking
        return None
