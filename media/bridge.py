"""Two legs joined: what one side says, the other hears (DESIGN.md, the call model).

Three ways, cheapest first:

- **relay**: both legs are RTP sessions sending the same codec. Each packet goes
  out the other side as it arrives, payload untouched, with only the header
  rewritten (media/session.py ``relay_packet``): no jitter buffer, no decoding,
  no added delay. DTMF events are relayed too.
  Listeners that take packets as they pass (``<Start><Stream>`` forks, added
  with ``paced=False``: media/taps.py) hear both ways from the relay itself: a
  session's tap gets each packet its peer sent (side 0) and each packet relayed
  to its peer (side 1), so a fork costs nothing while absent and no decoding on
  the relay path while present.
- **frames**: the same codec, but someone listens in who needs the media tick's
  pacing (a recording tap) or a leg is not an RTP session: jitter-buffered
  frames are passed on each tick.
- **transcode**: the codecs differ: each frame is decoded, resampled and
  encoded for the other side; DTMF is regenerated as RFC 4733 events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from media.leg import Frame, Leg
from media.session import RtpSession
from media.taps import Tap  # side (0 = a, 1 = b), the frame that side sent

__all__ = ["Bridge"]


def _ignore(*args: object) -> None:
    pass


class Bridge:
    """Joins legs ``a`` and ``b`` both ways until :meth:`stop`."""

    def __init__(self, a: Leg, b: Leg, *, tap: Tap | None = None) -> None:
        self.a = a
        self.b = b
        self.tap = tap
        self.on_dtmf: Callable[[int, str], None] = _ignore  # side, digit
        # After a re-plan (a codec changed, a listener came or went): a bridge carried
        # elsewhere (rtpengine) learns that its legs' listeners changed.
        self.on_replanned: Callable[[], None] = _ignore
        self.mode = ""
        self._saved: list[tuple[Leg, Callable[[Frame], None], Callable[[str], None]]] = []

    def start(self) -> None:
        a, b = self.a, self.b
        for leg in (a, b):
            self._saved.append((leg, leg.on_frame, leg.on_dtmf))
            if isinstance(leg, RtpSession):  # a mid-call codec change re-plans the bridge
                leg.on_reconfigured = self._restart
        if (
            self.tap is None
            and not a.tap_paced  # a leg a recording listens to takes the frames
            and not b.tap_paced
            and isinstance(a, RtpSession)
            and isinstance(b, RtpSession)
            and a.codec == b.codec
        ):
            self.mode = "relay"
            a.relay_to(b)
            b.relay_to(a)
            a.on_dtmf = lambda digit: self.on_dtmf(0, digit)
            b.on_dtmf = lambda digit: self.on_dtmf(1, digit)
            return
        self.mode = "frames" if a.codec == b.codec else "transcode"
        a.on_frame = self._passer(0, a, b)
        b.on_frame = self._passer(1, b, a)
        a.on_dtmf = self._dtmf_passer(0, b)
        b.on_dtmf = self._dtmf_passer(1, a)

    def _passer(self, side: int, source: Leg, target: Leg) -> Callable[[Frame], None]:
        tap = self.tap
        send = target.send_payload
        if source.codec == target.codec:
            if tap is None:
                return lambda frame: send(frame.payload)

            def pass_and_tap(frame: Frame) -> None:
                tap(side, frame)
                send(frame.payload)

            return pass_and_tap
        from media.codecs import Transcoder

        transcode = Transcoder(source.codec, target.codec)

        def transcode_frame(frame: Frame) -> None:
            if tap is not None:
                tap(side, frame)
            payload = transcode(frame.payload)
            if payload:  # b"": less than a frame is queued (a 10 ms Opus peer)
                send(payload)

        return transcode_frame

    def _dtmf_passer(self, side: int, target: Leg) -> Callable[[str], None]:
        def pass_digit(digit: str) -> None:
            self.on_dtmf(side, digit)
            # Without telephone-event on the other side, the digit goes no further.
            with contextlib.suppress(ValueError, NotImplementedError):
                target.send_dtmf(digit)

        return pass_digit

    def _restart(self) -> None:
        """A leg changed codec (a re-INVITE or UPDATE): pick relay/frames/transcode anew."""
        if self.mode:
            self.stop()
            self.start()
            self.on_replanned()

    def stop(self) -> None:
        for leg in (self.a, self.b):
            if isinstance(leg, RtpSession) and leg.on_reconfigured == self._restart:
                leg.on_reconfigured = _ignore
        if self.mode == "relay":
            for leg in (self.a, self.b):
                if isinstance(leg, RtpSession):
                    leg.relay_to(None)
        for leg, on_frame, on_dtmf in self._saved:
            leg.on_frame = on_frame
            leg.on_dtmf = on_dtmf
        self._saved.clear()
        self.mode = ""
