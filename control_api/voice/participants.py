"""Participants the REST API dials into a conference
(``POST Conferences/{CF or FriendlyName}/Participants.json``).

The participant is a call placed as REST calls are (voice/outbound.py, through
the ``LiveCalls`` port's ``create``: a Calls record of its own, its
StatusCallback events) whose TwiML is the ``<Dial><Conference>`` its parameters
describe. The conference is the live one of that sid, or the one of that friendly
name, made now when none runs (as Twilio does). Its Participants row is written
at once (``queued``), then follows the call: ``ringing``, ``connecting`` once
answered, ``connected`` once it joins (voice/conference.py), ``failed`` when it
is not answered, ``complete`` when it leaves.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from control_api.calls.browser import ClientCall
from control_api.calls.outbound_call import OutboundCall
from control_api.sids import is_sid
from control_api.store import ParticipantRecord
from control_api.voice.lifecycle import now
from control_api.voice.port import NewCall, NewParticipant

if TYPE_CHECKING:
    from control_api.store import CallRecord
    from control_api.voice.conference import Conferences, Room
    from control_api.voice.live import LiveCallTable

__all__ = ["add_participant", "participant_twiml"]

FIND_TRIES = 100  # the placed call is in the live table within a few loop turns
FIND_PAUSE_S = 0.02

Place = Callable[[str, NewCall], Awaitable["CallRecord | None"]]


def participant_twiml(name: str, new: NewParticipant) -> str:
    """The participant call's TwiML: ``<Dial><Conference>`` with its parameters."""
    attributes = {
        "beep": new.beep,
        "muted": _bool(new.muted),
        "startConferenceOnEnter": _bool(new.start_conference_on_enter),
        "endConferenceOnExit": _bool(new.end_conference_on_exit),
        "waitMethod": new.wait_method,
        "maxParticipants": str(new.max_participants),
        "participantLabel": new.label,
        "coach": new.call_sid_to_coach,
        "waitUrl": new.wait_url,
        "statusCallback": new.conference_status_callback,
        "statusCallbackMethod": new.conference_status_callback_method,
        "statusCallbackEvent": " ".join(new.conference_status_callback_events) or None,
        "record": new.conference_record,
    }
    response = ET.Element("Response")
    dial = ET.SubElement(response, "Dial")
    conference = ET.SubElement(
        dial, "Conference", {k: v for k, v in attributes.items() if v is not None}
    )
    conference.text = name
    return ET.tostring(response, encoding="unicode")


async def add_participant(
    conferences: Conferences,
    table: LiveCallTable,
    place: Place,
    account_sid: str,
    conference: str,
    new: NewParticipant,
) -> ParticipantRecord | None:
    """Place the participant's call towards the room; its row (queued), or None when
    this node places no calls. LookupError: no such live conference."""
    if is_sid(conference, "CF"):
        room = conferences.live_room(account_sid, conference)
        if room is None:
            raise LookupError(conference)
    else:
        room = conferences.open_room(account_sid, conference)
    call = replace(new.call, twiml=participant_twiml(room.name, new), url=None)
    try:
        record = await place(account_sid, call)
    except Exception:
        await _release(conferences, room)  # made for a call that was not placed
        raise
    if record is None:
        await _release(conferences, room)
        return None
    stamp = now()
    participant = ParticipantRecord(
        conference_sid=room.sid,
        call_sid=record.sid,
        account_sid=account_sid,
        label=new.label,
        muted=new.muted,
        hold=False,
        coaching=new.call_sid_to_coach is not None,
        call_sid_to_coach=new.call_sid_to_coach,
        status="queued",
        start_conference_on_enter=new.start_conference_on_enter,
        end_conference_on_exit=new.end_conference_on_exit,
        date_created=stamp,
        date_updated=stamp,
    )
    await conferences.expect(room, participant)
    conferences.tasks.spawn(_follow(conferences, table, room, account_sid, record.sid))
    return participant


async def _release(conferences: Conferences, room: Room) -> None:
    """End the room if nobody is in it or on the way; answer once its row says so."""
    conferences.release_if_empty(room)
    await room.journal.flush()


async def _follow(
    conferences: Conferences, table: LiveCallTable, room: Room, account_sid: str, sid: str
) -> None:
    """Keep the row's status in step with the call until it joins or fails."""
    answered = False
    for _ in range(FIND_TRIES):
        if table.find(account_sid, sid) is not None:
            break
        await asyncio.sleep(FIND_PAUSE_S)
    watched = None
    while (live := table.find(account_sid, sid)) is not None:
        call = live.call
        if call is not watched:
            watched = call
            if isinstance(call, OutboundCall | ClientCall):  # calls we place ring
                call.on_ringing.append(lambda _: conferences.progress(room, sid, "ringing"))
                call.on_answered.append(lambda _: conferences.progress(room, sid, "connecting"))
        await call.ended.wait()
        answered = answered or call.answered
        await asyncio.sleep(0)  # the winner of several destinations is tracked next
        if table.find(account_sid, sid) is live:
            break
    conferences.progress(room, sid, "complete" if answered else "failed")


def _bool(value: bool) -> str:
    return "true" if value else "false"
