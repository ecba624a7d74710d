"""Participants the REST API dials in: the TwiML their call runs, and their row
following the call (ringing, failed or complete) until it joins."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from control_api.store import CallRecord, Store
from control_api.voice import participants
from control_api.voice.conference import Conferences
from control_api.voice.live import LiveCallTable
from control_api.voice.port import NewCall, NewParticipant
from tests.control_api.voice.test_conference import FakeClock
from tests.control_api.voice.test_queue import until


def test_the_twiml_is_a_dial_conference_with_the_parameters_escaped():
    new = NewParticipant(
        call=NewCall(to="+15005550009", from_="+15005550006"),
        label='a "label" & more',
        muted=True,
        wait_url="",
        conference_status_callback_events=("join", "leave"),
    )
    conference = ET.fromstring(participants.participant_twiml("R&D <room>", new))
    assert conference.tag == "Response"
    node = conference.find("Dial/Conference")
    assert node.text == "R&D <room>"
    assert node.get("participantLabel") == 'a "label" & more'
    assert node.get("muted") == "true" and node.get("waitUrl") == ""  # empty: silence
    assert node.get("statusCallbackEvent") == "join leave"
    assert node.get("coach") is None and node.get("statusCallback") is None


class Ringing:
    """A placed call: rings, then is answered or not, then ends."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.on_ringing: list = []
        self.on_answered: list = []
        self.ended = asyncio.Event()
        self.answered = False

    def ring(self) -> None:
        for callback in self.on_ringing:
            callback(self)


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(f"sqlite:///{tmp_path / 'participants.db'}")
    yield store
    await store.close()


@pytest.fixture
async def account(store):
    return await store.accounts.create("participants")


@pytest.mark.parametrize("answered", [False, True])
async def test_the_row_follows_the_call_it_places(store, account, monkeypatch, answered):
    monkeypatch.setattr(participants, "OutboundCall", Ringing)
    conferences = Conferences(store, FakeClock())
    table = LiveCallTable()

    async def place(account_sid: str, call: NewCall) -> CallRecord:
        assert call.url is None and "<Conference" in (call.twiml or "")
        record = CallRecord(sid="CAplaced", account_sid=account_sid, to=call.to, from_=call.from_)
        return await store.calls.insert(record)

    new = NewParticipant(call=NewCall(to="+15005550009", from_="+15005550006"), label="agent")
    row = await participants.add_participant(conferences, table, place, account.sid, "standup", new)
    assert (row.status, row.label, row.call_sid) == ("queued", "agent", "CAplaced")
    [room] = conferences.rooms.values()
    call = Ringing("CAplaced")
    table.track(call, None, account.sid)
    await asyncio.sleep(0.1)
    call.ring()
    await room.journal.flush()
    assert (await store.participants.get(account.sid, room.sid, "CAplaced")).status == "ringing"
    call.answered = answered
    if answered:
        for callback in call.on_answered:
            callback(call)
        await room.journal.flush()
        row = await store.participants.get(account.sid, room.sid, "CAplaced")
        assert row.status == "connecting"
    call.ended.set()
    table.untrack("CAplaced")
    await until(lambda: room.ended)
    await room.journal.flush()
    final = await store.participants.get(account.sid, room.sid, "CAplaced")
    assert final.status == ("complete" if answered else "failed")
    assert (await store.conferences.get(account.sid, room.sid)).status == "completed"


async def test_an_unknown_conference_sid_is_a_lookup_error(store, account):
    conferences = Conferences(store, FakeClock())

    async def place(account_sid, call):
        raise AssertionError("nothing is placed")

    new = NewParticipant(call=NewCall(to="+15005550009", from_="+15005550006"))
    with pytest.raises(LookupError):
        await participants.add_participant(
            conferences, LiveCallTable(), place, account.sid, "CF" + "0" * 32, new
        )
