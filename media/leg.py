"""Frames and legs: the common currency of the media plane (DESIGN.md, the call model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Frame", "Leg"]


@dataclass(slots=True)
class Frame:
    """One packet's worth of audio: ``payload`` in ``codec``, ``samples`` long.

    ``timestamp`` counts samples at the codec's clock rate, as RTP does.
    """

    codec: str
    payload: bytes
    timestamp: int = 0
    samples: int = 160


def _ignore(*args) -> None:
    pass


class Leg:
    """One audio endpoint: frames in, frames out, DTMF and hang-up events.

    A consumer sets the ``on_*`` callbacks; a producer calls ``send_frame``.
    SIP/RTP legs, WebRTC legs and Media Streams legs all look like this, so a
    bridge or an application never needs to know which it holds.
    """

    codec: str = "PCMU"
    sample_rate: int = 8000
    kind: str = "other"  # what the far end is, for metrics: "sip" (RTP), "webrtc", ...

    def __init__(self) -> None:
        self.on_frame: Callable[[Frame], None] = _ignore
        self.on_dtmf: Callable[[str], None] = _ignore
        self.on_close: Callable[[], None] = _ignore
        self.closed = False

    def send_frame(self, frame: Frame) -> None:
        """Queue a frame to be played to the far end, paced at its duration."""
        raise NotImplementedError

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_close()
