"""Frames and legs: the common currency of the media plane (DESIGN.md, the call model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from media.rtcp import ReceptionStatistics

__all__ = ["Frame", "Leg", "PayloadSource", "Tap"]


@dataclass(slots=True)
class Frame:
    """One packet's worth of audio: ``payload`` in ``codec``, ``samples`` long.

    ``timestamp`` counts samples at the codec's clock rate, as RTP does.
    """

    codec: str
    payload: bytes
    timestamp: int = 0
    samples: int = 160


# Pulled on each tick when nothing is queued: the next payload in the leg's codec, or None.
PayloadSource = Callable[[], "bytes | None"]
# Listens to a call: ``tap(side, frame)``, side 0 what the peer sent, 1 what we sent.
Tap = Callable[[int, Frame], None]


def _ignore(*args: object) -> None:
    pass


class Leg:
    """One audio endpoint: frames in, frames out, DTMF and hang-up events.

    A consumer sets the ``on_*`` callbacks; a producer calls ``send_frame``.
    SIP/RTP legs, WebRTC legs and Media Streams legs all look like this, so a
    bridge or an application never needs to know which it holds.

    Optional features have defaults here, so nobody probes a leg for them:
    ``source`` (a pull source of payloads, used by paced legs when nothing is
    queued), ``tap`` (called with every frame each way, where ``tappable``),
    ``stats`` (RFC 3550 reception statistics, where kept), ``send_payload`` (a
    payload in the leg's own codec) and ``deliver_on_arrival`` (skip the jitter
    buffer, where there is one).
    """

    codec: str = "PCMU"
    sample_rate: int = 8000
    kind: str = "other"  # what the far end is, for metrics: "sip" (RTP), "webrtc", ...
    tappable: bool = False  # calls ``tap`` on each tick: its audio can be recorded or forked

    def __init__(self) -> None:
        self.on_frame: Callable[[Frame], None] = _ignore
        self.on_dtmf: Callable[[str], None] = _ignore
        self.on_close: Callable[[], None] = _ignore
        self.closed = False
        self.source: PayloadSource | None = None
        self.tap: Tap | None = None
        # Whether one of the tap's listeners needs the frames paced by the media tick (a
        # recording); media/taps.py keeps it. Else a relaying bridge feeds the tap as
        # packets pass (a fork), and stays a relay.
        self.tap_paced = False
        self.stats: ReceptionStatistics | None = None

    def send_frame(self, frame: Frame) -> None:
        """Queue a frame to be played to the far end, paced at its duration."""
        raise NotImplementedError

    def send_payload(self, payload: bytes) -> None:
        """Queue one 20 ms payload in the leg's codec (legs that queue payloads override
        this to skip the frame)."""
        self.send_frame(Frame(self.codec, payload, samples=self.sample_rate // 50))

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        raise NotImplementedError

    def deliver_on_arrival(self, on: bool) -> None:
        """Hand frames to ``on_frame`` as they arrive rather than on the next tick;
        a leg without a jitter buffer does so anyway."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_close()
