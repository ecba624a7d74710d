"""Several listeners on one leg's ``tap`` slot.

:class:`~media.session.RtpSession` calls ``tap(side, frame)`` on each tick (side 0:
the frame the peer sent us, side 1: the frame we sent the peer). The slot holds
one callable so the tick costs nothing extra when nobody listens and one call when
one does; :func:`add_tap` and :func:`remove_tap` put a :class:`TapFanout` in it only
while two or more listen (a whole-call recording and a ``<Start><Stream>`` fork,
say). When the first listener comes or the last goes, a bridge carrying the leg
re-plans (media/bridge.py: a relayed packet passes no tap, a listened-to leg's
frames do).
"""

from __future__ import annotations

from media.leg import Frame, Leg, Tap

__all__ = ["Tap", "TapFanout", "add_tap", "remove_tap"]


class TapFanout:
    """Calls each of ``taps`` in the order they were added."""

    __slots__ = ("taps",)

    def __init__(self, taps: list[Tap]) -> None:
        self.taps = taps

    def __call__(self, side: int, frame: Frame) -> None:
        for tap in self.taps:
            tap(side, frame)


def add_tap(leg: Leg, tap: Tap) -> None:
    """Let ``tap`` listen to ``leg`` too, next to whatever listens already."""
    current = leg.tap
    if current is None:
        leg.tap = tap
        _replan(leg)
    elif isinstance(current, TapFanout):
        leg.tap = TapFanout([*current.taps, tap])
    else:
        leg.tap = TapFanout([current, tap])


def remove_tap(leg: Leg, tap: Tap) -> None:
    """Stop ``tap`` listening to ``leg``; the others go on (a no-op if it wasn't there)."""
    current = leg.tap
    if current is None:
        return
    if isinstance(current, TapFanout):
        rest = [each for each in current.taps if each != tap]
    else:
        rest = [] if current == tap else [current]
    if not rest:
        leg.tap = None
        _replan(leg)
    elif len(rest) == 1:
        leg.tap = rest[0]
    else:
        leg.tap = TapFanout(rest)


def _replan(leg: Leg) -> None:
    """Tell a bridge carrying ``leg`` (an RTP session's ``on_reconfigured``) to choose
    between relaying and passing frames anew: whether anyone listens has changed."""
    reconfigured = getattr(leg, "on_reconfigured", None)
    if reconfigured is not None:
        reconfigured()
