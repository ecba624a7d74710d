"""``<Dial><Conference>`` with fake calls, legs and outbox over a real store: the wait
and hold music, status callbacks, reason_conference_ended, coaching, and participants
the REST API dials in."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from control_api.store import ParticipantRecord, Store
from control_api.voice.conference import Conferences
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from tests.control_api.voice.test_queue import FakeCall, twiml, until


class FakeClock:
    """A media clock the test ticks by hand."""

    def __init__(self) -> None:
        self.ticks: dict[int, object] = {}

    def subscribe(self, tick) -> int:
        token = len(self.ticks) + 1
        self.ticks[token] = tick
        return token

    def unsubscribe(self, token: int) -> None:
        self.ticks.pop(token, None)


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def enqueue(self, **delivery) -> str:
        self.sent.append(delivery)
        return str(len(self.sent))

    def events(self) -> list[str]:
        return [dict(d["params"])["StatusCallbackEvent"] for d in self.sent]

    def of(self, event: str) -> dict:
        return next(dict(d["params"]) for d in self.sent if event in dict(d["params"]).values())


class App:
    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    async def fetch(self, url: str, method: str, fields) -> str:
        self.asked.append(url)
        return self.pages[url]


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(f"sqlite:///{tmp_path / 'conferences.db'}")
    yield store
    await store.close()


@pytest.fixture
async def account(store):
    return await store.accounts.create("conferences")


@pytest.fixture
def outbox() -> FakeOutbox:
    return FakeOutbox()


@pytest.fixture
async def conferences(store, outbox):
    conferences = Conferences(store, FakeClock(), outbox)
    yield conferences
    for room in list(conferences.rooms.values()):  # every call still in a room hangs up
        for member in list(room.members.values()):
            member.call.hangup()
    await asyncio.sleep(0.05)


ROOM = "http://app/room"
CALLBACK = "http://app/events"


def pages(**extra: str) -> dict[str, str]:
    events = "start end join leave mute hold modify announcement"
    found = {
        ROOM: twiml(
            f'<Dial><Conference beep="false" statusCallback="{CALLBACK}" '
            f'statusCallbackEvent="{events}">room</Conference></Dial>'
        ),
        "http://app/waiter": twiml(
            '<Dial><Conference beep="false" startConferenceOnEnter="false">room</Conference></Dial>'
        ),
        "http://app/quiet-waiter": twiml(
            '<Dial><Conference beep="false" startConferenceOnEnter="false" waitUrl="">room'
            "</Conference></Dial>"
        ),
        "http://app/ender": twiml(
            '<Dial><Conference beep="false" endConferenceOnExit="true">room</Conference></Dial>'
        ),
    }
    found.update(extra)
    return found


def start(conferences, app: App, account, sid: str, url: str = ROOM) -> FakeCall:
    call = FakeCall(sid)
    context = SimpleNamespace(dialer=object(), conferences=conferences)
    services = VoiceServices(app.fetch, _no_media, _no_media, context=context)
    runner = TwimlRunner(call, services, lambda: [("CallSid", sid)], account_sid=account.sid)
    runner.start(Document(url))
    return call


async def _no_media(*args) -> object:
    raise AssertionError("no speech or audio files here")


def room_of(conferences: Conferences):
    [room] = conferences.rooms.values()
    return room


async def settled(conferences: Conferences, room) -> None:
    await asyncio.sleep(0.05)
    await room.journal.flush()


async def test_events_and_the_last_participant_leaving(conferences, store, account, outbox):
    app = App(pages())
    first = start(conferences, app, account, "CA1")
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    second = start(conferences, app, account, "CA2")
    await until(lambda: len(room.members) == 2)
    first.hangup()
    await until(lambda: len(room.members) == 1)
    second.hangup()
    await until(lambda: room.ended)
    await settled(conferences, room)
    assert outbox.events() == [
        "participant-join",
        "conference-start",
        "participant-join",
        "participant-leave",
        "participant-leave",
        "conference-end",
    ]
    assert [int(dict(d["params"])["SequenceNumber"]) for d in outbox.sent] == [1, 2, 3, 4, 5, 6]
    assert {d["url"] for d in outbox.sent} == {CALLBACK}
    assert {d["call_sid"] for d in outbox.sent} == {room.sid}  # in order, per conference
    join = outbox.of("participant-join")
    assert join["CallSid"] == "CA1" and join["FriendlyName"] == "room"
    assert join["ConferenceSid"] == room.sid and join["AccountSid"] == account.sid
    assert {join[k] for k in ("Muted", "Hold", "Coaching", "EndConferenceOnExit")} == {"false"}
    assert join["StartConferenceOnEnter"] == "true" and join["Timestamp"].endswith("+0000")
    end = outbox.of("conference-end")
    assert end["ReasonConferenceEnded"] == "last-participant-left"
    assert end["Reason"] == "Last participant left" and end["CallSidEndingConference"] == "CA2"
    record = await store.conferences.get(account.sid, room.sid)
    assert record.status == "completed"
    assert record.reason_conference_ended == "last-participant-left"
    assert record.call_sid_ending_conference == "CA2"
    rows = await store.participants.page(account.sid, room.sid)
    assert [(p.call_sid, p.status) for p in rows] == [("CA1", "complete"), ("CA2", "complete")]


async def test_waiters_hear_the_hold_music_until_the_start(conferences, account):
    app = App(pages())
    waiter = start(conferences, app, account, "CAwait", "http://app/waiter")
    quiet = start(conferences, app, account, "CAquiet", "http://app/quiet-waiter")
    await until(lambda: conferences.rooms and len(room_of(conferences).members) == 2)
    room = room_of(conferences)
    waiting = room.members["CAwait"].participant
    await until(lambda: waiter.leg.source is not None)  # the hold music plays to its leg
    assert waiting.aside and waiting.hold and not room.started
    silent = room.members["CAquiet"].participant
    assert silent.hold and not silent.aside and quiet.leg.source is None  # waitUrl="": silence
    start(conferences, app, account, "CAstart")
    await until(lambda: room.started)
    await until(lambda: waiter.leg.source is None)
    assert not waiting.aside and not waiting.hold and not silent.hold


async def test_a_wait_url_document_is_played_while_waiting(conferences, account):
    app = App(
        pages(
            **{
                "http://app/waiter": twiml(
                    '<Dial><Conference startConferenceOnEnter="false" waitUrl="/music">room'
                    "</Conference></Dial>"
                ),
                "http://app/music": twiml('<Pause length="5"/>'),
            }
        )
    )
    start(conferences, app, account, "CAwait", "http://app/waiter")
    await until(lambda: "http://app/music" in app.asked)
    assert room_of(conferences).members["CAwait"].participant.aside


async def test_hold_plays_hold_music_and_the_others_stop_hearing_it(
    conferences, account, outbox, store
):
    app = App(pages())
    held = start(conferences, app, account, "CA1")
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    start(conferences, app, account, "CA2")
    await until(lambda: len(room.members) == 2)
    assert await conferences.update_participant(account.sid, room.sid, "CA1", hold=True)
    member = room.members["CA1"].participant
    assert member.hold and member.aside  # not heard, and sent its own audio
    await until(lambda: held.leg.source is not None)
    assert "participant-hold" in outbox.events()
    row = await store.participants.get(account.sid, room.sid, "CA1")
    assert row.hold
    assert await conferences.update_participant(account.sid, room.sid, "CA1", hold=False)
    await until(lambda: held.leg.source is None)
    assert not member.hold and not member.aside
    assert "participant-unhold" in outbox.events()


async def test_mute_coach_and_modify(conferences, account, outbox, store):
    app = App(pages())
    start(conferences, app, account, "CAagent")
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    start(conferences, app, account, "CAcoach")
    await until(lambda: len(room.members) == 2)
    assert await conferences.update_participant(account.sid, room.sid, "CAcoach", muted=True)
    assert outbox.events()[-1] == "participant-mute"
    assert not await conferences.update_participant(
        account.sid, room.sid, "CAcoach", coaching=True, call_sid_to_coach="CAnobody"
    )
    assert await conferences.update_participant(
        account.sid, room.sid, "CAcoach", muted=False, coaching=True, call_sid_to_coach="CAagent"
    )
    coach = room.members["CAcoach"]
    assert coach.participant.coaching == id(room.members["CAagent"].call.leg)
    assert outbox.events()[-2:] == ["participant-unmute", "participant-modify"]
    assert outbox.of("participant-modify")["CallSidToCoach"] == "CAagent"
    row = await store.participants.get(account.sid, room.sid, "CAcoach")
    assert row.coaching and row.call_sid_to_coach == "CAagent"
    assert await conferences.update_participant(account.sid, room.sid, "CAcoach", coaching=False)
    assert coach.participant.coaching is None


@pytest.mark.parametrize(
    ("who", "kicked", "reason"),
    [
        ("CAender", False, "participant-with-end-conference-on-exit-left"),
        ("CAender", True, "participant-with-end-conference-on-exit-kicked"),
        ("CAother", True, None),  # the room goes on: one is left
    ],
)
async def test_why_the_conference_ended(conferences, account, store, who, kicked, reason):
    app = App(pages())
    calls = {"CAender": start(conferences, app, account, "CAender", "http://app/ender")}
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    calls["CAother"] = start(conferences, app, account, "CAother")
    await until(lambda: len(room.members) == 2)
    if kicked:
        assert await conferences.kick(account.sid, room.sid, who)
    else:
        calls[who].hangup()
    await until(lambda: who not in room.members)
    await settled(conferences, room)
    record = await store.conferences.get(account.sid, room.sid)
    assert record.reason_conference_ended == reason
    if reason is None:
        assert not room.ended
        assert await conferences.kick(account.sid, room.sid, "CAender")
        await settled(conferences, room)
        record = await store.conferences.get(account.sid, room.sid)
        assert record.reason_conference_ended == "participant-with-end-conference-on-exit-kicked"


async def test_the_last_kicked_and_the_end_by_api(conferences, account, store):
    app = App(pages())
    start(conferences, app, account, "CA1")
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    assert await conferences.kick(account.sid, room.sid, "CA1")
    record = await store.conferences.get(account.sid, room.sid)
    assert record.reason_conference_ended == "last-participant-kicked"
    start(conferences, app, account, "CA2")
    await until(lambda: conferences.rooms)
    second = room_of(conferences)
    assert second.sid != room.sid
    assert await conferences.end(account.sid, second.sid)
    record = await store.conferences.get(account.sid, second.sid)
    assert record.reason_conference_ended == "conference-ended-via-api"


async def test_a_dialled_in_participant_is_queued_then_connected(conferences, account, store):
    room = conferences.open_room(account.sid, "room")
    pending = ParticipantRecord(
        conference_sid=room.sid, call_sid="CAdialled", account_sid=account.sid, status="queued"
    )
    await conferences.expect(room, pending)
    conferences.progress(room, "CAdialled", "ringing")
    await room.journal.flush()
    row = await store.participants.get(account.sid, room.sid, "CAdialled")
    assert row.status == "ringing"
    start(conferences, App(pages()), account, "CAdialled")
    await until(lambda: "CAdialled" in room.members)
    await room.journal.flush()
    row = await store.participants.get(account.sid, room.sid, "CAdialled")
    assert row.status == "connected"
    conferences.progress(room, "CAdialled", "failed")  # joined already: no change
    assert not room.ended


async def test_a_room_made_for_a_call_that_failed_ends(conferences, account, store):
    room = conferences.open_room(account.sid, "room")
    pending = ParticipantRecord(
        conference_sid=room.sid, call_sid="CAgone", account_sid=account.sid, status="queued"
    )
    await conferences.expect(room, pending)
    conferences.progress(room, "CAgone", "failed")
    await room.journal.flush()
    assert room.ended and not conferences.rooms
    row = await store.participants.get(account.sid, room.sid, "CAgone")
    assert row.status == "failed"
    assert (await store.conferences.get(account.sid, room.sid)).status == "completed"


class FakeSources:
    """Announcements: TwiML by URL, speech as a second of samples per word."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages

    async def fetch(self, url, method, params, token) -> str:
        return self.pages[url]

    async def synthesize(self, text, voice, language):
        import numpy as np

        return np.full(80 * len(text.split()), 1000, dtype=np.int16)

    async def load_audio(self, url):
        raise AssertionError("no audio files here")

    async def token_of(self, account_sid):
        return "token"


async def test_an_announcement_into_the_room_and_to_one_participant(store, account, outbox):
    from control_api.voice.conference_audio import AnnouncementSources

    fake = FakeSources({"http://app/hello": twiml("<Say>hello everyone</Say>")})
    sources = AnnouncementSources(fake.fetch, fake.synthesize, fake.load_audio, fake.token_of)
    conferences = Conferences(store, FakeClock(), outbox, sources)
    app = App(pages(**{"http://app/to-one": twiml('<Pause length="1"/>')}))
    one = start(conferences, app, account, "CA1")
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    assert await conferences.announce(account.sid, room.sid, "http://app/hello")
    await until(lambda: room.mixer_room.mixer._announcements)  # mixed into every listener
    [(samples, _)] = room.mixer_room.mixer._announcements
    assert len(samples) == 160 and set(samples.tolist()) == {1000}
    await until(lambda: "announcement-end" in outbox.events(), timeout=5)
    assert not await conferences.announce(account.sid, "CFnone", "http://app/hello")

    assert await conferences.update_participant(
        account.sid, room.sid, "CA1", announce_url="http://app/to-one"
    )
    member = room.members["CA1"]
    assert member.announcing and member.participant.aside
    await until(lambda: outbox.events().count("announcement-end") == 2, timeout=5)
    assert not member.announcing and not member.participant.aside
    assert outbox.of("announcement-end") and "http://app/to-one" in app.asked
    one.hangup()
    await until(lambda: room.ended)


async def test_speaker_events_follow_who_talks(conferences, account, outbox):
    from media.g711 import ulaw_encode
    from media.tones import ToneGenerator

    app = App(
        pages(
            **{
                ROOM: twiml(
                    f'<Dial><Conference beep="false" statusCallback="{CALLBACK}" '
                    'statusCallbackEvent="speaker">room</Conference></Dial>'
                )
            }
        )
    )
    talker = start(conferences, app, account, "CAtalker")
    await until(lambda: conferences.rooms)
    room = room_of(conferences)
    [tick] = conferences.clock.ticks.values()
    loud = ulaw_encode(ToneGenerator(440, amplitude=0.3).next_frame())
    for _ in range(5):
        talker.leg.on_frame(SimpleNamespace(payload=loud))
        tick()
    for _ in range(30):
        tick()
    await room.journal.flush()
    assert outbox.events() == ["participant-speech-start", "participant-speech-stop"]
    assert outbox.of("participant-speech-start")["CallSid"] == "CAtalker"


async def test_an_announcement_is_held_to_ten_minutes_of_samples():
    """A <Play loop> of a long file becomes at most MAX_ANNOUNCEMENT_SAMPLES, not loop
    times the file."""
    from control_api.voice.conference_audio import (
        MAX_ANNOUNCEMENT_SAMPLES,
        announcement_samples,
    )

    async def fetch(url, method, params):
        return '<Response><Play loop="1000">https://app.test/long.wav</Play></Response>'

    async def load_audio(url):
        return np.ones(60 * 8000, dtype=np.int16)  # a minute

    async def synthesize(text, voice, language):
        raise AssertionError("nothing is said")

    samples = await announcement_samples(
        fetch, synthesize, load_audio, "https://app.test/a", "POST", []
    )
    assert samples.size == MAX_ANNOUNCEMENT_SAMPLES
