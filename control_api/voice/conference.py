"""``<Dial><Conference>``: rooms where every party hears the sum of the others.

A room is made by its first participant (per account and friendly name) and
has a Conferences row; each call in it has a Participants row. It starts when
a participant with ``startConferenceOnEnter`` joins: until then the others
wait, neither hearing nor heard. ``beep`` plays on entry and exit,
``muted`` parties are heard by nobody, and when a participant with
``endConferenceOnExit`` leaves, the room ends for everyone. The REST API
mutes, holds and kicks through :class:`Conferences` (the ``LiveConferences``
of control_api/api/conferences.py). Leaving a conference ends the
``<Dial>``; the TwiML goes on after it, or at its ``action``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from control_api.store import ConferenceRecord, ParticipantRecord
from control_api.twiml.verbs import Conference
from control_api.voice.lifecycle import Journal, now
from media.conference import ConferenceRoom
from media.mixer import Participant
from media.tones import beep

if TYPE_CHECKING:
    from control_api.calls.call import Call
    from control_api.voice.runner import TwimlRunner

__all__ = ["Conferences"]

log = logging.getLogger("callswitch.voice")

ENTER_BEEP = (1000.0, 0.3)
EXIT_BEEP = (600.0, 0.3)


@dataclass(eq=False)
class _Member:
    call: Call  # the runner's call
    participant: Participant
    noun: Conference
    left: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Room:
    sid: str
    account_sid: str
    name: str
    mixer_room: ConferenceRoom
    members: dict[str, _Member] = field(default_factory=dict)
    started: bool = False
    ended: bool = False
    journal: Journal = field(default_factory=Journal)  # its store writes, in order


class Conferences:
    """The live conference rooms of this node."""

    def __init__(self, store, clock) -> None:
        self.store = store
        self.clock = clock
        self.rooms: dict[tuple[str, str], _Room] = {}
        self._by_sid: dict[str, _Room] = {}

    async def join(self, runner: TwimlRunner, noun: Conference):
        """Put the runner's call in room ``noun.name`` until it leaves; the Dial outcome."""
        from control_api.voice.dial import DialOutcome

        call = runner.call
        if not await call.answer():
            return DialOutcome("canceled", None, False)
        key = (runner.account_sid, noun.name)
        room = self.rooms.get(key)
        if room is None or room.ended:
            # Made at once, before any await: callers joining together share one room.
            sid = "CF" + secrets.token_hex(16)
            room = _Room(sid, runner.account_sid, noun.name, ConferenceRoom(self.clock))
            self.rooms[key] = room
            self._by_sid[sid] = room
            stamp = now()
            room.journal.add(
                lambda: self.store.insert_conference(
                    ConferenceRecord(
                        sid=sid,
                        account_sid=runner.account_sid,
                        friendly_name=noun.name,
                        status="init",
                        date_created=stamp,
                        date_updated=stamp,
                    )
                )
            )
        if len(room.members) >= noun.max_participants:
            return DialOutcome("failed", None, False)
        leg = call.leg
        assert leg is not None  # answered above: its leg is bound
        participant = room.mixer_room.join(leg, muted=noun.muted)
        member = _Member(call, participant, noun)
        room.members[call.sid] = member
        stamp = now()
        room.journal.add(
            lambda: self.store.insert_participant(
                ParticipantRecord(
                    conference_sid=room.sid,
                    call_sid=call.sid,
                    account_sid=room.account_sid,
                    label=noun.participant_label,
                    muted=noun.muted,
                    hold=False,
                    status="connected",
                    start_conference_on_enter=noun.start_conference_on_enter,
                    end_conference_on_exit=noun.end_conference_on_exit,
                    date_created=stamp,
                    date_updated=stamp,
                )
            )
        )
        if noun.start_conference_on_enter and not room.started:
            self._start(room)
        elif not room.started:
            participant.hold = True  # waits, neither hearing nor heard, until the start
        if room.started and noun.beep in ("true", "onEnter"):
            room.mixer_room.mixer.announce(beep(*ENTER_BEEP))
        call.log("conference.joined", conference_sid=room.sid, members=len(room.members))
        gone = asyncio.ensure_future(call.ended.wait())
        left = asyncio.ensure_future(member.left.wait())
        try:
            await asyncio.wait([gone, left], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            left.cancel()
            self._leave(room, member)
        return DialOutcome("completed", None, False)

    def _start(self, room: _Room) -> None:
        room.started = True
        for member in room.members.values():
            member.participant.hold = False
        room.journal.add(lambda: self.store.update_conference(room.sid, status="in-progress"))

    def _leave(self, room: _Room, member: _Member) -> None:
        call = member.call
        if room.members.pop(call.sid, None) is None:
            return
        if call.leg is not None:
            room.mixer_room.leave(call.leg)
        room.journal.add(
            lambda: self.store.update_participant(room.sid, call.sid, status="complete")
        )
        if room.started and not room.ended and member.noun.beep in ("true", "onExit"):
            room.mixer_room.mixer.announce(beep(*EXIT_BEEP))
        if member.noun.end_conference_on_exit and not room.ended:
            self._end(room, "Participant with 'endConferenceOnExit' left", call.sid)
        elif not room.members:
            self._end(room, "Last participant left", call.sid)

    def _end(self, room: _Room, reason: str, call_sid: str | None = None) -> None:
        room.ended = True
        for member in list(room.members.values()):
            member.left.set()
        self.rooms.pop((room.account_sid, room.name), None)
        self._by_sid.pop(room.sid, None)
        room.journal.add(
            lambda: self.store.update_conference(
                room.sid,
                status="completed",
                reason_conference_ended=reason,
                call_sid_ending_conference=call_sid,
            )
        )

    # -- LiveConferences (the REST API)

    def _room(self, account_sid: str, conference_sid: str) -> _Room | None:
        room = self._by_sid.get(conference_sid)
        return room if room is not None and room.account_sid == account_sid else None

    def _member(
        self, account_sid: str, conference_sid: str, call_sid: str
    ) -> tuple[_Room, _Member] | None:
        """The account's room and the call's place in it, while it is there."""
        room = self._room(account_sid, conference_sid)
        member = room.members.get(call_sid) if room is not None else None
        return (room, member) if room is not None and member is not None else None

    async def end(self, account_sid: str, conference_sid: str) -> bool:
        room = self._room(account_sid, conference_sid)
        if room is None:
            return False
        self._end(room, "Conference ended via API")
        await self._settle(room)
        return True

    async def update_participant(
        self,
        account_sid: str,
        conference_sid: str,
        call_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
    ) -> bool:
        found = self._member(account_sid, conference_sid, call_sid)
        if found is None:
            return False
        room, member = found
        fields = {}
        if muted is not None:
            member.participant.muted = fields["muted"] = muted
        if hold is not None:
            member.participant.hold = fields["hold"] = hold
        room.journal.add(lambda: self.store.update_participant(conference_sid, call_sid, **fields))
        await room.journal.flush()
        return True

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        found = self._member(account_sid, conference_sid, call_sid)
        if found is None:
            return False
        room, member = found
        member.left.set()
        await self._settle(room)
        return True

    async def _settle(self, room: _Room) -> None:
        """Let the woken participants leave and their rows be written."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(room.journal.flush(), 2.0)
