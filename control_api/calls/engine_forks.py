"""What a bridge on rtpengine says, for the forks of its calls (docs/rtpengine.md).

While rtpengine carries a ``<Dial>`` bridge, the parties' packets no longer pass
through callswitch, so the listeners on a party's leg (``<Start><Stream>`` forks,
a live recording) would hear nothing. :class:`EngineListeners` asks rtpengine for a
copy of each party's media (ng ``subscribe request``, then ``subscribe answer``
with the address of an RTP session of our own, one per party) and hands every
packet that arrives to the legs' taps as it comes, as the in-process relay does
(media/session.py): a party's copy is side 0 of its own leg's tap (what it said)
and side 1 of the other party's (what that one hears), and, for a listener on the
bridge itself (a ``<Dial record=...>`` recording, the ``tap`` of media/bridge.py),
side 0 for the caller's copy and 1 for the callee's. Nothing is decoded here;
a fork turns what it gets into mu-law itself, whatever the party's codec.

The copies run while anyone listens: :meth:`EngineListeners.update` subscribes
when the first listener comes and unsubscribes when the last goes;
:meth:`close` unsubscribes and closes the sessions (the bridge's ``delete``
ends any subscription left on rtpengine too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from media.leg import Frame, Leg
from media.ports import PortsExhausted
from media.rtpengine.client import EngineError, RtpEngines
from media.sdp import Codec, SdpParseError, SessionDescription, build_offer, remote_rtp_address
from media.session import RtpSession
from media.taps import Tap

__all__ = ["EngineListeners", "Party"]

log = logging.getLogger("callswitch.calls")


@dataclass(frozen=True, slots=True)
class Party:
    """A party of the bridge: its ng ``tag``, its ``leg`` (whose tap hears it on
    side 0), the leg that ``hearer`` (the other party's: side 1), and the ``codec``
    its phone sends (rtpengine's copy keeps its payload type)."""

    tag: str
    leg: Leg
    hearer: Leg
    codec: Codec


class _Copy:
    """One party's media, copied to one RTP session of ours."""

    def __init__(self, session: RtpSession, to_tag: str) -> None:
        self.session = session
        self.to_tag = to_tag


def _feeder(
    speaker: Leg, hearer: Leg, bridge_tap: Tap | None, side: int
) -> Callable[[Frame], None]:
    """What the copy of ``speaker``'s media does with each frame: side 0 of the
    speaker's own tap, side 1 of the hearer's (only while someone listens), and
    ``side`` of the bridge's own tap."""

    def feed(frame: Frame) -> None:
        if bridge_tap is not None:
            bridge_tap(side, frame)
        tap = speaker.tap
        if tap is not None:
            tap(0, frame)
        tap = hearer.tap
        if tap is not None:
            tap(1, frame)

    return feed


class EngineListeners:
    """The copies of both parties' media on one rtpengine call (see the module doc).

    ``bind`` opens an RTP session on our ports (``RtpSession.bind`` with the call's
    port pool and clock); ``address`` is the one rtpengine sends the copies to.
    """

    def __init__(
        self,
        engines: RtpEngines,
        call_id: str,
        parties: tuple[Party, Party],
        *,
        bind: Callable[[], Awaitable[RtpSession]],
        address: str,
        tap: Tap | None = None,
    ) -> None:
        self.engines = engines
        self.call_id = call_id
        self.parties = parties
        self._bind = bind
        self.address = address
        self.tap = tap  # the bridge's own listener (a recording), for as long as it runs
        self.copies: list[_Copy] = []
        self._lock = asyncio.Lock()
        self.closed = False

    def listened(self) -> bool:
        """Whether anyone listens to the bridge or to either party's leg."""
        return self.tap is not None or any(party.leg.tap is not None for party in self.parties)

    async def update(self) -> bool:
        """Subscribe while anyone listens, unsubscribe once nobody does; True while
        the copies run."""
        async with self._lock:
            if self.closed:
                return False
            if self.listened() and not self.copies:
                await self._subscribe()
            elif not self.listened() and self.copies:
                await self._unsubscribe()
            return bool(self.copies)

    async def _subscribe(self) -> None:
        copies: list[_Copy] = []
        try:
            for side, party in enumerate(self.parties):
                copies.append(await self._copy(party, side))
        except (EngineError, OSError, PortsExhausted, SdpParseError, ValueError) as exc:
            log.warning(
                "rtpengine.subscribe_failed",
                extra={"ng_call_id": self.call_id, "reason": str(exc)[:120]},
            )
            await self._end(copies)
            return
        self.copies = copies
        log.info(
            "rtpengine.forks_subscribed",
            extra={"ng_call_id": self.call_id, "tracks": len(copies)},
        )

    async def _copy(self, party: Party, side: int) -> _Copy:
        offer, to_tag = await self.engines.subscribe_request(self.call_id, party.tag, ICE="remove")
        session = await self._bind()
        try:
            sdp = SessionDescription.parse(offer)
            audio = next((m for m in sdp.media if m.media == "audio" and m.port), None)
            if audio is None:
                raise ValueError("no audio in rtpengine's subscription offer")
            session.configure(party.codec, remote_rtp_address(sdp, audio))
            session.deliver_on_arrival(True)  # no tick, no jitter buffer: as packets come
            session.on_frame = _feeder(party.leg, party.hearer, self.tap, side)
            # Every codec offered is accepted (rtpengine 10.5 refuses an answer without
            # the telephone-event it offered); only the party's own is listened to.
            codecs = audio.codecs or [party.codec]
            answer = build_offer(self.address, session.port, codecs, session.ssrc)
            answer.media[0].direction = "recvonly"
            await self.engines.subscribe_answer(
                self.call_id, to_tag, answer.serialize().decode(), flags=["asymmetric"]
            )
        except BaseException:
            session.close()
            raise
        return _Copy(session, to_tag)

    async def _unsubscribe(self) -> None:
        copies, self.copies = self.copies, []
        await self._end(copies)
        log.info("rtpengine.forks_unsubscribed", extra={"ng_call_id": self.call_id})

    async def _end(self, copies: list[_Copy]) -> None:
        for copy in copies:
            copy.session.close()
            with contextlib.suppress(EngineError):
                await self.engines.unsubscribe(self.call_id, copy.to_tag)

    async def close(self, *, unsubscribe: bool = True) -> None:
        """Stop copying: close our sessions and (unless the call is being deleted
        or rtpengine is gone) unsubscribe."""
        async with self._lock:
            self.closed = True
            copies, self.copies = self.copies, []
            if unsubscribe:
                await self._end(copies)
            else:
                for copy in copies:
                    copy.session.close()
