"""Answering-machine detection: who picked up a call we placed, from its first seconds.

Pure: 16-bit PCM frames in (any rate; the legs deliver 20 ms at a time), one
decision out, with how long it took. What Twilio's AMD answers (reference
§2, ``AnsweredBy``) and how its tuning parameters read:

- ``fax``: a fax machine's calling tone (CNG, 1100 Hz; or an answering fax's CED,
  2100 Hz) held for 400 ms;
- ``human``: speech shorter than ``speech_threshold_ms`` followed by
  ``speech_end_threshold_ms`` of silence ("Hello?" and a wait);
- ``machine_start``: speech that goes on longer than ``speech_threshold_ms``
  (pauses shorter than ``speech_end_threshold_ms`` do not end it: a greeting);
- with ``detect_message_end``, a machine is followed to the end of its greeting:
  ``machine_end_beep`` (a steady tone, the beep), ``machine_end_silence``
  (``speech_end_threshold_ms`` of silence) or ``machine_end_other`` (the timeout
  came first);
- ``unknown``: ``silence_timeout_ms`` of silence before any speech, or the
  ``timeout_ms`` ran out undecided.

A frame is speech when it is loud enough (above -45 dBFS and 9 dB over the
line's noise floor, which is tracked) and not a steady tone; a tone is a
frame whose energy sits within a few hertz of one frequency (a beep, CNG or
CED), which speech never does for long. Time is counted in audio: a peer that
sends nothing for a while is caught up with :meth:`MachineDetector.catch_up`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ANSWERED_BY",
    "AmdResult",
    "AmdSettings",
    "MachineDetector",
]

HUMAN = "human"
MACHINE_START = "machine_start"
MACHINE_END_BEEP = "machine_end_beep"
MACHINE_END_SILENCE = "machine_end_silence"
MACHINE_END_OTHER = "machine_end_other"
FAX = "fax"
UNKNOWN = "unknown"
ANSWERED_BY = (
    HUMAN,
    MACHINE_START,
    MACHINE_END_BEEP,
    MACHINE_END_SILENCE,
    MACHINE_END_OTHER,
    FAX,
    UNKNOWN,
)

SPEECH_FLOOR_DBFS = -45.0  # quieter than this is never speech
OVER_NOISE_DB = 9.0  # speech stands this far above the line's noise
TONE_FLOOR_DBFS = -40.0
TONAL = 0.8  # share of a frame's energy within ±2 bins of its peak: a tone
FAX_TONES_HZ = (1100.0, 2100.0)  # CNG (T.30) and CED
FAX_TOLERANCE_HZ = 40.0
FAX_MS = 400  # a CNG burst is 500 ms
BEEP_MS = 120
BEEP_BAND_HZ = (300.0, 3000.0)
FFT_SIZE = 512
FRAME_MS = 20.0


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Twilio's AMD parameters (``MachineDetection...``), in milliseconds."""

    detect_message_end: bool = False  # MachineDetection=DetectMessageEnd
    timeout_ms: int = 30_000  # MachineDetectionTimeout (given in seconds)
    speech_threshold_ms: int = 2_400
    speech_end_threshold_ms: int = 1_200
    silence_timeout_ms: int = 5_000


@dataclass(frozen=True, slots=True)
class AmdResult:
    answered_by: str  # one of ANSWERED_BY
    duration_ms: int  # audio heard until the decision (MachineDetectionDuration)


_WAITING, _SPEAKING, _MACHINE = range(3)


class MachineDetector:
    """Feed it the answered party's audio; :attr:`result` is set once it decides."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self.result: AmdResult | None = None
        self.elapsed_ms = 0.0
        self._state = _WAITING
        self._noise_dbfs = -60.0
        self._speech_start = 0.0
        self._last_speech = 0.0
        self._fax_ms = 0.0
        self._beep_ms = 0.0
        self._windows: dict[int, np.ndarray] = {}

    def feed(self, samples: np.ndarray, rate: int) -> AmdResult | None:
        """One frame of 16-bit PCM at ``rate`` Hz; the decision once there is one."""
        if self.result is not None or samples.size == 0:
            return self.result
        duration = 1000.0 * samples.size / rate
        self.elapsed_ms += duration
        level = _level_dbfs(samples)
        tone = self._tone_hz(samples, rate) if level > TONE_FLOOR_DBFS else None
        speech = tone is None and level > max(SPEECH_FLOOR_DBFS, self._noise_dbfs + OVER_NOISE_DB)
        self._track_noise(level, speech)
        return self._step(duration, speech, tone)

    def catch_up(self, elapsed_ms: float) -> AmdResult | None:
        """The call has been answered ``elapsed_ms`` and audio stopped short of that (a
        peer sends nothing in silence, or packets are lost): count the gap as silence."""
        while self.result is None and self.elapsed_ms < elapsed_ms:
            step = min(FRAME_MS, elapsed_ms - self.elapsed_ms)  # decide at the right moment
            self.elapsed_ms += step
            self._step(step, False, None)
        return self.result

    # -- the decision

    def _step(self, duration: float, speech: bool, tone: float | None) -> AmdResult | None:
        s = self.settings
        now = self.elapsed_ms
        if tone is not None and any(abs(tone - f) <= FAX_TOLERANCE_HZ for f in FAX_TONES_HZ):
            self._fax_ms += duration
            if self._fax_ms >= FAX_MS:
                return self._decide(FAX)
        else:
            self._fax_ms = 0.0
        if self._state == _WAITING:
            if speech:
                self._state = _SPEAKING
                self._speech_start = now - duration
                self._last_speech = now
            elif now >= s.silence_timeout_ms:
                return self._decide(UNKNOWN)
        elif self._state == _SPEAKING:
            if speech:
                self._last_speech = now
            if self._last_speech - self._speech_start > s.speech_threshold_ms:
                if not s.detect_message_end:
                    return self._decide(MACHINE_START)
                self._state = _MACHINE
            elif now - self._last_speech >= s.speech_end_threshold_ms:
                return self._decide(HUMAN)
        else:  # a machine's greeting, followed to its end
            if tone is not None and BEEP_BAND_HZ[0] <= tone <= BEEP_BAND_HZ[1]:
                self._beep_ms += duration
                if self._beep_ms >= BEEP_MS:
                    return self._decide(MACHINE_END_BEEP)
            else:
                self._beep_ms = 0.0
            if speech:
                self._last_speech = now
            elif now - self._last_speech >= s.speech_end_threshold_ms and not self._beep_ms:
                return self._decide(MACHINE_END_SILENCE)
        if now >= s.timeout_ms:
            return self._decide(MACHINE_END_OTHER if self._state == _MACHINE else UNKNOWN)
        return None

    def _decide(self, answered_by: str) -> AmdResult:
        self.result = AmdResult(answered_by, round(self.elapsed_ms))
        return self.result

    # -- what a frame holds

    def _track_noise(self, level: float, speech: bool) -> None:
        """The line's noise floor: follows quiet frames down at once, up slowly."""
        if level < self._noise_dbfs:
            self._noise_dbfs = max(level, -90.0)
        elif not speech:
            self._noise_dbfs = min(self._noise_dbfs + 0.2, SPEECH_FLOOR_DBFS)

    def _tone_hz(self, samples: np.ndarray, rate: int) -> float | None:
        """The frequency of a steady tone filling the frame, or None."""
        size = samples.size
        if size < 32:  # too short a frame to tell a tone from anything else
            return None
        window = self._windows.get(size)
        if window is None:
            window = self._windows[size] = np.hanning(size)
        spectrum = np.abs(np.fft.rfft(samples * window, max(FFT_SIZE, size))) ** 2
        total = float(spectrum.sum())
        if total <= 0.0:
            return None
        peak = int(np.argmax(spectrum))
        # The Hann window's main lobe: two bins of the frame's own resolution each side.
        width = int(np.ceil(2 * (spectrum.size - 1) / (size // 2)))
        share = float(spectrum[max(0, peak - width) : peak + width + 1].sum()) / total
        if share < TONAL:
            return None
        return peak * rate / (2.0 * (spectrum.size - 1))


def _level_dbfs(samples: np.ndarray) -> float:
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power <= 0.0:
        return -120.0
    return 10.0 * float(np.log10(power / (32768.0 * 32768.0)))
