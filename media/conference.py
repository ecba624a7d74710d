"""A conference room: a :class:`~media.mixer.Mixer` wired to real legs and the media clock.

Each leg's ``on_frame`` pushes into the mixer; one subscription to the clock runs
:meth:`Mixer.mix` every 20 ms and hands each leg its N-1 mix. A leg's frame that arrives after
this tick's mix is heard on the next tick: at most 20 ms more delay, never a lost frame.
``listeners`` get each tick's whole mix (a conference recording).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

import numpy as np

from media.leg import Frame, Leg
from media.mixer import Mixer, Participant

__all__ = ["ConferenceRoom"]


class _Clock(Protocol):
    def subscribe(self, tick: Callable[[], None]) -> int: ...

    def unsubscribe(self, token: int) -> None: ...


class ConferenceRoom:
    """Legs joined to one :class:`Mixer`, paced by one :class:`~media.clock.MediaClock`."""

    def __init__(self, clock: _Clock, mixer: Mixer | None = None) -> None:
        self.clock = clock
        self.mixer = mixer if mixer is not None else Mixer()
        self._legs: dict[
            Hashable,
            tuple[Leg, Callable[[Frame], None], Callable[[], None], Callable[[bytes], None]],
        ] = {}
        self._token: int | None = None
        # Called with each tick's whole mix (160 int16 samples), after the legs got theirs.
        self.listeners: list[Callable[[np.ndarray], None]] = []
        self.on_tick: Callable[[], None] | None = None  # after each mix (speaker events)

    def __len__(self) -> int:
        return len(self._legs)

    def join(self, leg: Leg, *, muted: bool = False) -> Participant:
        """Add ``leg``: from now on it is heard by and hears the others. It leaves on close."""
        key = id(leg)
        participant = self.mixer.add(key, leg.codec, muted=muted)
        self._legs[key] = (leg, leg.on_frame, leg.on_close, leg.send_payload)
        push = self.mixer.push
        leg.on_frame = lambda frame: push(key, frame.payload)
        saved_on_close = leg.on_close

        def left(leg: Leg = leg) -> None:
            self.leave(leg)
            saved_on_close()

        leg.on_close = left
        if self._token is None:
            self._token = self.clock.subscribe(self._tick)
        return participant

    def participant(self, leg: Leg) -> Participant | None:
        return self.mixer.participants.get(id(leg))

    def leave(self, leg: Leg) -> None:
        """Take ``leg`` out and give it back its previous callbacks."""
        entry = self._legs.pop(id(leg), None)
        if entry is None:
            return
        _, on_frame, on_close, _ = entry
        leg.on_frame = on_frame
        leg.on_close = on_close
        self.mixer.remove(id(leg))
        if not self._legs and self._token is not None:
            self.clock.unsubscribe(self._token)
            self._token = None

    def _tick(self) -> None:
        legs = self._legs
        for key, payload in self.mixer.mix().items():
            entry = legs.get(key)
            if entry is not None:
                entry[3](payload)
        for listen in self.listeners:
            listen(self.mixer.total)
        if self.on_tick is not None:
            self.on_tick()

    def close(self) -> None:
        for leg, *_ in list(self._legs.values()):
            self.leave(leg)
