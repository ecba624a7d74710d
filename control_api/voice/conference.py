"""``<Dial><Conference>``: rooms where every party hears the sum of the others.

A room is made by its first participant (per account and friendly name), or by the
Participants API dialling someone into a name not running yet, and has a
Conferences row; each call in it has a Participants row. It starts when a
participant with ``startConferenceOnEnter`` joins: until then the others wait,
not heard, hearing the ``waitUrl`` (the local hold music by default;
voice/conference_audio.py). ``beep`` plays on entry and exit, ``muted`` parties are
heard by nobody, a ``coach`` is heard only by the call it coaches, and when a
participant with ``endConferenceOnExit`` leaves, the room ends for everyone. Its
``reason_conference_ended`` is one of the spec's (conference_events.REASON_TEXT).
The first ``statusCallback`` given gets the room's events
(voice/conference_events.py). The REST API mutes, holds (with ``HoldUrl``),
announces, coaches and kicks through :class:`Conferences` (the ``LiveConferences``
of control_api/api/conferences.py); participants it dials in are announced here
first (:meth:`Conferences.expect`, voice/participants.py). Leaving a conference
ends the ``<Dial>``; the TwiML goes on after it, or at its ``action``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from control_api.calls.waiting import until_any
from control_api.store import ConferenceRecord, ParticipantRecord
from control_api.twiml.verbs import Conference
from control_api.voice.conference_audio import AnnouncementSources, announce_to, play_aside
from control_api.voice.conference_events import (
    REASON_TEXT,
    ConferenceCallbacks,
    ParticipantView,
    parse_events,
)
from control_api.voice.conference_speakers import SpeechDetector
from control_api.voice.context import TaskSupervisor
from control_api.voice.lifecycle import Journal, now
from control_api.voice.live_recording import LiveRecording, record_conference, update_live
from media.conference import ConferenceRoom
from media.mixer import Participant
from media.tones import beep

if TYPE_CHECKING:
    from control_api.calls.call import Call
    from control_api.voice.runner import TwimlRunner
    from control_api.webhooks import Outbox

__all__ = ["Conferences", "Room"]

log = logging.getLogger("callswitch.voice")

ENTER_BEEP = (1000.0, 0.3)
EXIT_BEEP = (600.0, 0.3)
HOLD_METHOD = "GET"  # HoldMethod's default
RATE = 8000


@dataclass(eq=False)
class _Member:
    call: Call  # the runner's call
    runner: TwimlRunner
    participant: Participant
    noun: Conference
    end_on_exit: bool
    beep_on_exit: bool
    call_sid_to_coach: str | None = None
    waiting: bool = False  # the room has not started
    on_hold: bool = False  # held through the REST API
    hold_url: tuple[str | None, str] = (None, HOLD_METHOD)
    aside: asyncio.Task | None = None  # what it hears instead of the room
    announcing: bool = False
    kicked: bool = False
    speech: SpeechDetector = field(default_factory=SpeechDetector)
    left: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> ParticipantView:
        return ParticipantView(
            call_sid=self.call.sid,
            label=self.noun.participant_label,
            muted=self.participant.muted,
            hold=self.on_hold,
            coaching=self.call_sid_to_coach is not None,
            call_sid_to_coach=self.call_sid_to_coach,
            start_conference_on_enter=self.noun.start_conference_on_enter,
            end_conference_on_exit=self.end_on_exit,
        )


@dataclass(eq=False)
class Room:
    """A live conference room: its sid and name are what other modules read."""

    sid: str
    account_sid: str
    name: str
    mixer_room: ConferenceRoom
    members: dict[str, _Member] = field(default_factory=dict)
    pending: dict[str, ParticipantRecord] = field(default_factory=dict)  # dialled in
    started: bool = False
    ended: bool = False
    callbacks: ConferenceCallbacks | None = None
    journal: Journal = field(default_factory=Journal)  # its store writes, in order
    # record="record-from-start": (the voice context, the noun, the call that asked)
    recording_asked: tuple | None = None
    recordings: list[LiveRecording] = field(default_factory=list)  # voice/live_recording.py


class Conferences:
    """The live conference rooms of this node."""

    def __init__(
        self,
        store,
        clock,
        outbox: Outbox | None = None,
        sources: AnnouncementSources | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.outbox = outbox  # status callbacks (None: none are sent)
        self.sources = sources  # announcements into a room (None: none are played)
        self.tasks = TaskSupervisor()
        self.rooms: dict[tuple[str, str], Room] = {}
        self._by_sid: dict[str, Room] = {}

    # -- rooms

    def open_room(self, account_sid: str, name: str) -> Room:
        """The account's live room of that name, made (with its row) when there is none."""
        key = (account_sid, name)
        room = self.rooms.get(key)
        if room is not None and not room.ended:
            return room
        # Made at once, before any await: callers joining together share one room.
        sid = "CF" + secrets.token_hex(16)
        room = Room(sid, account_sid, name, ConferenceRoom(self.clock))
        self.rooms[key] = room
        self._by_sid[sid] = room
        stamp = now()
        record = ConferenceRecord(
            sid=sid,
            account_sid=account_sid,
            friendly_name=name,
            status="init",
            date_created=stamp,
            date_updated=stamp,
        )
        room.journal.add(lambda: self.store.insert_conference(record))
        return room

    def live_room(self, account_sid: str, conference_sid: str) -> Room | None:
        room = self._by_sid.get(conference_sid)
        return room if room is not None and room.account_sid == account_sid else None

    def _write(self, room: Room, call_sid: str, **fields: Any) -> None:
        room.journal.add(lambda: self.store.update_participant(room.sid, call_sid, **fields))

    def _emit(self, room: Room, event: str, member: _Member | None = None, **extra: str) -> None:
        if room.callbacks is None:
            return
        write = room.callbacks.delivery(event, member.view() if member else None, **extra)
        if write is not None:
            room.journal.add(write)

    def _callbacks_of(self, room: Room, noun: Conference) -> None:
        """The first participant's statusCallback becomes the room's."""
        if room.callbacks is not None or not noun.status_callback or self.outbox is None:
            return
        room.callbacks = ConferenceCallbacks(
            self.outbox.enqueue,
            room.account_sid,
            room.sid,
            room.name,
            noun.status_callback,
            noun.status_callback_method or "POST",
            parse_events(noun.status_callback_event),
        )
        if room.callbacks.wants("participant-speech-start"):
            room.mixer_room.mixer.measure_levels = True
            room.mixer_room.on_tick = lambda: self._speakers(room)

    def _speakers(self, room: Room) -> None:
        """Each tick: who started or stopped speaking (``speaker`` events)."""
        mixer = room.mixer_room.mixer
        for member in list(room.members.values()):
            leg = member.call.leg
            change = member.speech.tick(mixer.level(id(leg))) if leg is not None else None
            if change is not None:
                event = "participant-speech-start" if change else "participant-speech-stop"
                self._emit(room, event, member)

    # -- participants dialled in by the REST API (voice/participants.py)

    async def expect(self, room: Room, record: ParticipantRecord) -> None:
        """A call the REST API placed to join ``room``: its row (queued) until it joins."""
        room.pending[record.call_sid] = record
        room.journal.add(lambda: self.store.insert_participant(record))
        await room.journal.flush()

    def progress(self, room: Room, call_sid: str, status: str) -> None:
        """A dialled-in call rings, or (``failed``) will never join."""
        if call_sid not in room.pending:
            return
        self._write(room, call_sid, status=status)
        if status in ("failed", "complete"):
            del room.pending[call_sid]
            self.release_if_empty(room)

    def release_if_empty(self, room: Room) -> None:
        """End a room nobody is in or on the way to (one made for a call that failed)."""
        if not room.members and not room.pending and not room.ended:
            self._end(room, None)

    # -- joining and leaving

    async def join(self, runner: TwimlRunner, noun: Conference):
        """Put the runner's call in room ``noun.name`` until it leaves; the Dial outcome."""
        from control_api.voice.dial import DialOutcome

        call = runner.call
        if not await call.answer():
            return DialOutcome("canceled", None, False)
        room = self.open_room(runner.account_sid, noun.name)
        if len(room.members) >= noun.max_participants:
            return DialOutcome("failed", None, False)
        leg = call.leg
        assert leg is not None  # answered above: its leg is bound
        participant = room.mixer_room.join(leg, muted=noun.muted)
        pending = room.pending.pop(call.sid, None)
        member = _Member(
            call,
            runner,
            participant,
            noun,
            end_on_exit=noun.end_conference_on_exit,
            beep_on_exit=noun.beep in ("true", "onExit"),
        )
        room.members[call.sid] = member
        self._coach(room, member, noun.coach)
        self._callbacks_of(room, noun)
        self._joined_row(room, member, pending)
        self._emit(room, "participant-join", member)
        if noun.record == "record-from-start" and room.recording_asked is None:
            context = runner.services.context
            if context is not None:
                room.recording_asked = (context, noun, call.sid)
        if noun.start_conference_on_enter and not room.started:
            self._start(room)
        elif not room.started:
            member.waiting = True
            self._refresh(member)
        self._record(room)
        if room.started and noun.beep in ("true", "onEnter"):
            room.mixer_room.mixer.announce(beep(*ENTER_BEEP))
        call.log("conference.joined", conference_sid=room.sid, members=len(room.members))
        try:
            await until_any(call.ended, member.left)
        finally:
            self._leave(room, member)
        return DialOutcome("completed", None, False)

    def _joined_row(self, room: Room, member: _Member, pending: ParticipantRecord | None) -> None:
        call, noun = member.call, member.noun
        if pending is not None:
            self._write(
                room,
                call.sid,
                status="connected",
                muted=member.participant.muted,
                coaching=member.call_sid_to_coach is not None,
                call_sid_to_coach=member.call_sid_to_coach,
            )
            return
        stamp = now()
        record = ParticipantRecord(
            conference_sid=room.sid,
            call_sid=call.sid,
            account_sid=room.account_sid,
            label=noun.participant_label,
            muted=noun.muted,
            hold=False,
            coaching=member.call_sid_to_coach is not None,
            call_sid_to_coach=member.call_sid_to_coach,
            status="connected",
            start_conference_on_enter=noun.start_conference_on_enter,
            end_conference_on_exit=noun.end_conference_on_exit,
            date_created=stamp,
            date_updated=stamp,
        )
        room.journal.add(lambda: self.store.insert_participant(record))

    def _coach(self, room: Room, member: _Member, call_sid: str | None) -> bool:
        """Make ``member`` coach ``call_sid`` (heard by it alone); None: coach nobody.
        False when that call is not in the room."""
        if call_sid is None:
            member.participant.coaching = None
            member.call_sid_to_coach = None
            return True
        coached = room.members.get(call_sid)
        if coached is None or coached.call.leg is None or coached is member:
            return False
        member.participant.coaching = id(coached.call.leg)  # the mixer's key for its leg
        member.call_sid_to_coach = call_sid
        return True

    def _start(self, room: Room) -> None:
        room.started = True
        for member in room.members.values():
            member.waiting = False
            self._refresh(member)
        room.journal.add(lambda: self.store.update_conference(room.sid, status="in-progress"))
        self._emit(room, "conference-start")

    def _record(self, room: Room) -> None:
        """``record="record-from-start"``: the room's mix from its start to its end."""
        if not room.started or room.ended or room.recording_asked is None or room.recordings:
            return
        context, noun, call_sid = room.recording_asked
        room.recordings.append(
            record_conference(
                context,
                room.mixer_room,
                account_sid=room.account_sid,
                conference_sid=room.sid,
                call_sid=call_sid,
                trim=noun.trim,
                status_callback=noun.recording_status_callback,
                status_callback_method=noun.recording_status_callback_method,
                status_callback_events=noun.recording_status_callback_event,
            )
        )

    def _refresh(self, member: _Member) -> None:
        """Set what the member hears and whether it is heard: the room, its wait or hold
        experience, or an announcement to it."""
        member.participant.hold = member.waiting or member.on_hold
        if member.announcing:
            return
        if member.waiting:
            url, method = member.noun.wait_url, member.noun.wait_method
            if url == "":  # an empty waitUrl: silence
                self._aside(member, None)
            else:
                self._aside(member, play_aside(member.runner, url, method))
        elif member.on_hold:
            self._aside(member, play_aside(member.runner, *member.hold_url))
        else:
            self._aside(member, None)

    def _aside(self, member: _Member, playing: Coroutine[Any, Any, Any] | None) -> None:
        if member.aside is not None:
            member.aside.cancel()
            member.aside = None
        member.participant.aside = playing is not None
        if playing is not None:
            member.aside = asyncio.ensure_future(playing)

    def _leave(self, room: Room, member: _Member) -> None:
        call = member.call
        if room.members.pop(call.sid, None) is None:
            return
        self._aside(member, None)
        member.participant.aside = False
        if call.leg is not None:
            room.mixer_room.leave(call.leg)
        for other in room.members.values():  # its coach coaches nobody now
            if other.call_sid_to_coach == call.sid:
                self._coach(room, other, None)
        self._write(room, call.sid, status="complete", hold=False)
        reason = "participant_updated_via_api" if member.kicked else "participant_hung_up"
        if room.ended:
            reason = "conference_ended"
        self._emit(room, "participant-leave", member, ReasonParticipantLeft=reason)
        if room.started and not room.ended and member.beep_on_exit:
            room.mixer_room.mixer.announce(beep(*EXIT_BEEP))
        how = "kicked" if member.kicked else "left"
        if member.end_on_exit and not room.ended:
            self._end(room, f"participant-with-end-conference-on-exit-{how}", call.sid)
        elif not room.members and not room.ended:
            self._end(room, f"last-participant-{how}", call.sid)

    def _end(self, room: Room, reason: str | None, call_sid: str | None = None) -> None:
        room.ended = True
        for member in list(room.members.values()):
            member.left.set()
        self.rooms.pop((room.account_sid, room.name), None)
        self._by_sid.pop(room.sid, None)
        for recording in room.recordings:
            room.journal.add(recording.stop)
        room.journal.add(
            lambda: self.store.update_conference(
                room.sid,
                status="completed",
                reason_conference_ended=reason,
                call_sid_ending_conference=call_sid,
            )
        )
        self._emit(
            room,
            "conference-end",
            ReasonConferenceEnded=reason or "",
            Reason=REASON_TEXT.get(reason or "", ""),
            CallSidEndingConference=call_sid or "",
        )

    # -- LiveConferences (the REST API)

    def _member(
        self, account_sid: str, conference_sid: str, call_sid: str
    ) -> tuple[Room, _Member] | None:
        """The account's room and the call's place in it, while it is there."""
        room = self.live_room(account_sid, conference_sid)
        member = room.members.get(call_sid) if room is not None else None
        return (room, member) if room is not None and member is not None else None

    async def end(self, account_sid: str, conference_sid: str) -> bool:
        room = self.live_room(account_sid, conference_sid)
        if room is None:
            return False
        self._end(room, "conference-ended-via-api")
        await self._settle(room)
        return True

    async def update_participant(
        self, account_sid: str, conference_sid: str, call_sid: str, **changes: Any
    ) -> bool:
        """Mute (``muted``), hold (``hold``, ``hold_url``, ``hold_method``), announce to
        (``announce_url``, ``announce_method``), coach (``coaching``,
        ``call_sid_to_coach``), change ``end_conference_on_exit`` or ``beep_on_exit``;
        None leaves a thing as it is. False when the call is not in the live room, or
        the call to coach is not."""
        found = self._member(account_sid, conference_sid, call_sid)
        if found is None:
            return False
        room, member = found
        muted, hold = changes.get("muted"), changes.get("hold")
        fields: dict[str, Any] = {}
        if not self._coaching(room, member, changes, fields):
            return False
        if muted is not None and muted != member.participant.muted:
            member.participant.muted = fields["muted"] = muted
            self._emit(room, "participant-mute" if muted else "participant-unmute", member)
        if changes.get("hold_url") is not None:
            member.hold_url = (changes["hold_url"], changes.get("hold_method") or HOLD_METHOD)
        if hold is not None and hold != member.on_hold:
            member.on_hold = fields["hold"] = hold
            self._refresh(member)
            self._emit(room, "participant-hold" if hold else "participant-unhold", member)
        if changes.get("end_conference_on_exit") is not None:
            member.end_on_exit = fields["end_conference_on_exit"] = changes[
                "end_conference_on_exit"
            ]
        if changes.get("beep_on_exit") is not None:
            member.beep_on_exit = changes["beep_on_exit"]
        if "coaching" in fields or "end_conference_on_exit" in fields:
            self._emit(room, "participant-modify", member)
        if changes.get("announce_url"):
            self._announce_to(room, member, changes["announce_url"], changes.get("announce_method"))
        if fields:
            self._write(room, call_sid, **fields)
        await room.journal.flush()
        return True

    def _coaching(self, room: Room, member: _Member, changes: dict, fields: dict) -> bool:
        coaching, coached = changes.get("coaching"), changes.get("call_sid_to_coach")
        if coaching is None and coached is None:
            return True
        if coaching is False:
            self._coach(room, member, None)
        elif not self._coach(room, member, coached or member.call_sid_to_coach):
            return False
        fields["coaching"] = member.call_sid_to_coach is not None
        fields["call_sid_to_coach"] = member.call_sid_to_coach
        return True

    def _announce_to(self, room: Room, member: _Member, url: str, method: str | None) -> None:
        """Play ``url`` to the member alone, then give it back what it heard."""
        member.announcing = True

        async def announce() -> None:
            done = False
            try:
                done = await announce_to(member.runner, url, method or "POST")
            finally:
                member.announcing = False
                if member.call.sid in room.members:
                    member.aside = None
                    self._refresh(member)
                    self._emit(room, "announcement-end" if done else "announcement-fail", member)

        self._aside(member, announce())

    async def announce(
        self, account_sid: str, conference_sid: str, url: str, method: str = "POST"
    ) -> bool:
        """Play ``url`` into the room, heard by every participant (in the background)."""
        room = self.live_room(account_sid, conference_sid)
        sources = self.sources
        if room is None or sources is None:
            return False
        params = [("AccountSid", account_sid), ("ConferenceSid", room.sid)]
        params.append(("FriendlyName", room.name))

        async def play_it() -> None:
            try:
                samples = await sources.samples(account_sid, url, method, params)
            except Exception as exc:
                log.warning("conference.announce_failed", extra={"error": str(exc)})
                self._emit(room, "announcement-fail")
                return
            if room.ended:
                return
            room.mixer_room.mixer.announce(samples)
            await asyncio.sleep(len(samples) / RATE)
            self._emit(room, "announcement-end")

        self.tasks.spawn(play_it())
        return True

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        found = self._member(account_sid, conference_sid, call_sid)
        if found is None:
            return False
        room, member = found
        member.kicked = True
        member.left.set()
        await self._settle(room)
        return True

    async def update_recording(
        self, account_sid: str, conference_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        """``POST Conferences/{CF}/Recordings/{Sid}``: None when the room is not live here."""
        room = self.live_room(account_sid, conference_sid)
        if room is None:
            return None
        return await update_live(room.recordings, sid, status, pause_behavior)

    async def _settle(self, room: Room) -> None:
        """Let the woken participants leave and their rows be written."""
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.wait_for(room.journal.flush(), 2.0)
