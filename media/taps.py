"""Several listeners on one leg's ``tap`` slot.

:class:`~media.session.RtpSession` calls ``tap(side, frame)`` with what passes each
way (side 0: the frame the peer sent us, side 1: the frame we sent the peer). The
slot holds one callable so a leg costs nothing extra when nobody listens and one
call when one does; :func:`add_tap` and :func:`remove_tap` put a :class:`TapFanout`
in it only while two or more listen (a whole-call recording and a ``<Start><Stream>``
fork, say).

Listeners come in two kinds. A *paced* one (the default: a recording, which keeps
its two channels aligned by the media tick) needs one frame per tick: a bridge
carrying the leg passes jitter-buffered frames while one listens. An *unpaced* one
(``paced=False``: a fork, which sends each packet on as it comes) takes packets as
they arrive, so a relaying bridge stays a relay and feeds it each relayed packet
both ways (media/session.py). The leg's ``tap_paced`` says whether any listener is
paced. When the first listener comes, the last goes, or ``tap_paced`` changes, a
bridge carrying the leg re-plans (media/bridge.py).
"""

from __future__ import annotations

from media.leg import Frame, Leg, Tap

__all__ = ["Tap", "TapFanout", "add_tap", "remove_tap"]


class TapFanout:
    """Calls each of ``taps`` in the order they were added; ``paced[i]`` says
    whether ``taps[i]`` needs its frames paced by the media tick."""

    __slots__ = ("paced", "taps")

    def __init__(self, taps: list[Tap], paced: list[bool] | None = None) -> None:
        self.taps = taps
        self.paced = paced if paced is not None else [True] * len(taps)

    def __call__(self, side: int, frame: Frame) -> None:
        for tap in self.taps:
            tap(side, frame)


def _listeners(leg: Leg) -> list[tuple[Tap, bool]]:
    current = leg.tap
    if current is None:
        return []
    if isinstance(current, TapFanout):
        return list(zip(current.taps, current.paced, strict=True))
    return [(current, leg.tap_paced)]


def _install(leg: Leg, listeners: list[tuple[Tap, bool]]) -> None:
    had_tap, was_paced = leg.tap is not None, leg.tap_paced
    if not listeners:
        leg.tap, leg.tap_paced = None, False
    elif len(listeners) == 1:
        leg.tap, leg.tap_paced = listeners[0]
    else:
        taps = [tap for tap, _ in listeners]
        paced = [each for _, each in listeners]
        leg.tap, leg.tap_paced = TapFanout(taps, paced), any(paced)
    if had_tap != (leg.tap is not None) or was_paced != leg.tap_paced:
        _replan(leg)


def add_tap(leg: Leg, tap: Tap, *, paced: bool = True) -> None:
    """Let ``tap`` listen to ``leg`` too, next to whatever listens already;
    ``paced=False``: it takes frames as their packets pass (see the module doc)."""
    _install(leg, [*_listeners(leg), (tap, paced)])


def remove_tap(leg: Leg, tap: Tap) -> None:
    """Stop ``tap`` listening to ``leg``; the others go on (a no-op if it wasn't there)."""
    if leg.tap is None:
        return
    _install(leg, [(each, paced) for each, paced in _listeners(leg) if each != tap])


def _replan(leg: Leg) -> None:
    """Tell a bridge carrying ``leg`` (an RTP session's ``on_reconfigured``) to choose
    between relaying and passing frames anew: who listens has changed."""
    reconfigured = getattr(leg, "on_reconfigured", None)
    if reconfigured is not None:
        reconfigured()
