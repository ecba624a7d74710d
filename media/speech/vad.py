"""Voice activity: is this 20 ms frame speech? WebRTC's detector (``webrtcvad``).

``webrtcvad`` (the ``webrtcvad-wheels`` package) is Google's GMM detector from
WebRTC, in C: about a microsecond a frame, so it runs on the event loop beside
the media clock. It takes 10, 20 or 30 ms frames of 16-bit mono PCM at 8, 16,
32 or 48 kHz; ``aggressiveness`` 0 (lets most through) to 3 (strictest). Frames
quieter than ``FLOOR_DBFS`` are silence whatever the detector says (line hiss
and comfort noise are not a caller).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import webrtcvad

__all__ = ["FLOOR_DBFS", "VoiceActivityDetector"]

FLOOR_DBFS = -55.0
_FLOOR = (32768.0 * 10 ** (FLOOR_DBFS / 20)) ** 2  # mean square


class VoiceActivityDetector:
    def __init__(self, sample_rate: int = 8000, aggressiveness: int = 2) -> None:
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"voice activity at {sample_rate} Hz: 8, 16, 32 or 48 kHz only")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate // 50  # 20 ms
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: npt.NDArray[np.int16]) -> bool:
        """One 20 ms frame of int16 samples."""
        if frame.size != self.frame_samples:
            raise ValueError(f"a frame is {self.frame_samples} samples, not {frame.size}")
        as_float = frame.astype(np.float32)
        if float(np.dot(as_float, as_float)) / frame.size < _FLOOR:
            return False
        return bool(self._vad.is_speech(frame.astype(np.int16).tobytes(), self.sample_rate))
