"""Live recordings with fakes (no sockets): what is written while in progress, paused
with skip or silence, and stopped; tracks and channels; finishing when the call ends;
``Twilio.CURRENT``; a conference room's mix; the status callbacks."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from control_api.voice.context import TaskSupervisor
from control_api.voice.live_recording import (
    CURRENT,
    CallRecordings,
    record_conference,
    update_live,
)
from control_api.voice.port import NewRecording
from media.conference import ConferenceRoom
from media.g711 import ulaw_encode
from media.leg import Frame, Leg
from media.tones import sine


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, object] = {}
        self.updates: list[tuple[str, dict]] = []

    async def insert_recording(self, record):
        self.rows[record.sid] = record
        return record

    async def update_recording(self, sid: str, **fields):
        self.updates.append((sid, fields))
        return self.rows.get(sid)

    def statuses(self, sid: str) -> list[str]:
        return [f["status"] for s, f in self.updates if s == sid and "status" in f]


class FakeOutbox:
    def __init__(self) -> None:
        self.posted: list[dict] = []

    async def enqueue(self, **item) -> None:
        self.posted.append(item)


class FakeContext:
    def __init__(self, directory: Path) -> None:
        self.store = FakeStore()
        self.outbox = FakeOutbox()
        self.tasks = TaskSupervisor()
        self.recordings_dir = directory
        self.base_url = "http://api.example"


class FakeClock:
    """Ticks when the test says so."""

    def __init__(self) -> None:
        self.ticks: dict[int, object] = {}
        self._next = 0

    def subscribe(self, tick) -> int:
        self._next += 1
        self.ticks[self._next] = tick
        return self._next

    def unsubscribe(self, token: int) -> None:
        self.ticks.pop(token, None)

    def tick(self) -> None:
        for tick in list(self.ticks.values()):
            tick()


class RoomLeg(Leg):
    """A conference party that keeps what the room sends it."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[bytes] = []

    def send_payload(self, payload: bytes) -> None:
        self.heard.append(payload)


class FakeMedia:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock


class FakeCall:
    def __init__(self, clock: FakeClock) -> None:
        self.sid = "CA" + "1" * 32
        self.leg = Leg()
        self.media = FakeMedia(clock)
        self.ended = asyncio.Event()
        self.answered = True


def frame(frequency: float) -> Frame:
    return Frame("PCMU", ulaw_encode(sine(frequency, 0.02, amplitude=0.25)), 0, 160)


def speak(call: FakeCall, clock: FakeClock, frequency: float, ticks: int, side: int = 0) -> None:
    """``ticks`` media ticks in which side ``side`` of the call's leg carries a tone."""
    for _ in range(ticks):
        if call.leg.tap is not None:
            call.leg.tap(side, frame(frequency))
        clock.tick()


def samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as audio:
        data = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2")
        return data.reshape(-1, audio.getnchannels())


def strongest(block: np.ndarray) -> float:
    """The frequency of the strongest component of ``block`` (8 kHz)."""
    spectrum = np.abs(np.fft.rfft(block.astype(np.float64)))
    return float(np.fft.rfftfreq(block.size, 1 / 8000)[int(np.argmax(spectrum))])


@pytest.fixture
def world(tmp_path):
    clock = FakeClock()
    return FakeContext(tmp_path), clock, FakeCall(clock), CallRecordings()


async def test_only_the_window_is_recorded_and_a_skipped_pause_left_out(world):
    context, clock, call, recordings = world
    speak(call, clock, 440.0, 25)  # before the start: not recorded
    live = await recordings.start(context, "AC1", call, NewRecording())
    assert context.store.rows[live.sid].source == "StartCallRecordingAPI"
    assert context.store.rows[live.sid].status == "in-progress"
    speak(call, clock, 1000.0, 50)  # one second recorded
    await update_live(recordings.of_call(call.sid), CURRENT, "paused", "skip")
    speak(call, clock, 440.0, 50)  # paused, skipped: not in the file, no time either
    await update_live(recordings.of_call(call.sid), live.sid, "in-progress", "silence")
    speak(call, clock, 1500.0, 25)  # half a second more
    await update_live(recordings.of_call(call.sid), live.sid, "stopped", "silence")
    speak(call, clock, 2000.0, 25)  # after the stop: not recorded
    assert context.store.statuses(live.sid) == ["paused", "in-progress", "completed"]
    audio = samples(live.recording.path)
    assert audio.shape[1] == 1  # mono (the default): both tracks mixed
    assert audio.shape[0] == 75 * 160  # 1.5 s: the paused second left out
    assert strongest(audio[: 50 * 160, 0]) == pytest.approx(1000.0, abs=20)
    assert strongest(audio[50 * 160 :, 0]) == pytest.approx(1500.0, abs=20)
    completed = context.store.updates[-1][1]
    assert completed["duration"] == 2  # 1.5 s rounded
    assert call.leg.tap is None  # it no longer listens
    assert recordings.find(call.sid, CURRENT) is None


async def test_a_pause_with_silence_keeps_the_time_silent(world):
    context, clock, call, recordings = world
    live = await recordings.start(context, "AC1", call, NewRecording())
    speak(call, clock, 1000.0, 25)
    await live.set_status("paused", "silence")
    speak(call, clock, 440.0, 25)
    await live.set_status("stopped")
    audio = samples(live.recording.path)[:, 0]
    assert audio.size == 50 * 160
    assert np.abs(audio[25 * 160 :]).max() == 0  # the paused half-second is silence


async def test_tracks_and_dual_channels(world):
    context, clock, call, recordings = world
    inbound = await recordings.start(
        context, "AC1", call, NewRecording(channels="dual", track="inbound")
    )
    for _ in range(25):
        call.leg.tap(0, frame(1000.0))  # what the caller says
        call.leg.tap(1, frame(500.0))  # what the caller hears
        clock.tick()
    await inbound.stop()
    audio = samples(inbound.recording.path)
    assert audio.shape == (25 * 160, 2)
    assert strongest(audio[:, 0]) == pytest.approx(1000.0, abs=20)
    assert np.abs(audio[:, 1]).max() == 0  # the outbound track is not recorded
    assert context.store.rows[inbound.sid].channels == 2
    assert context.store.rows[inbound.sid].track == "inbound"


async def test_the_end_of_the_call_finishes_the_recording_and_callbacks_go_out(world):
    context, clock, call, recordings = world
    live = await recordings.start(
        context,
        "AC1",
        call,
        NewRecording(
            status_callback="https://app.example/rec",
            status_callback_method="GET",
            status_callback_events=("in-progress", "completed"),
        ),
    )
    speak(call, clock, 1000.0, 60)
    call.ended.set()
    await asyncio.wait_for(live.stopped.wait(), 5)  # the watcher stops it
    assert live.done is not None
    await asyncio.wait_for(asyncio.shield(live.done), 10)  # the file is written
    assert live.status == "stopped"
    assert context.store.statuses(live.sid) == ["completed"]
    events = [dict(item["params"]) for item in context.outbox.posted]
    assert [each["RecordingStatus"] for each in events] == ["in-progress", "completed"]
    assert all(item["method"] == "GET" for item in context.outbox.posted)
    done = events[-1]
    assert done["RecordingSource"] == "StartCallRecordingAPI"
    assert done["RecordingDuration"] == "1" and done["RecordingChannels"] == "1"
    assert done["RecordingTrack"] == "both" and done["CallSid"] == call.sid
    assert (
        done["RecordingUrl"] == f"http://api.example/2010-04-01/Accounts/AC1/Recordings/{live.sid}"
    )
    for _ in range(100):  # the watcher lets go of the ended call's recordings
        if not recordings.of_call(call.sid):
            break
        await asyncio.sleep(0.01)
    assert recordings.of_call(call.sid) == []


async def test_unknown_or_stopped_recordings_are_lookup_errors(world):
    context, _clock, call, recordings = world
    with pytest.raises(LookupError):
        await update_live(recordings.of_call(call.sid), CURRENT, "paused", "skip")
    live = await recordings.start(context, "AC1", call, NewRecording())
    with pytest.raises(LookupError):
        await update_live(recordings.of_call(call.sid), "RE" + "0" * 32, "paused", "skip")
    await live.stop()
    with pytest.raises(LookupError):
        await update_live(recordings.of_call(call.sid), live.sid, "paused", "skip")


async def test_a_conference_recording_holds_the_whole_mix(tmp_path):
    context = FakeContext(tmp_path)
    clock = FakeClock()
    room = ConferenceRoom(clock)
    alice, bob = RoomLeg(), RoomLeg()
    room.join(alice)
    room.join(bob)
    live = record_conference(
        context,
        room,
        account_sid="AC1",
        conference_sid="CF1",
        call_sid="CA1",
        trim="do-not-trim",
        status_callback="https://app.example/conf",
    )
    for _ in range(25):
        alice.on_frame(frame(1000.0))
        bob.on_frame(frame(600.0))
        clock.tick()
    await live.set_status("paused", "skip")
    for _ in range(25):
        alice.on_frame(frame(1500.0))
        clock.tick()
    await live.stop()
    audio = samples(live.recording.path)[:, 0]
    assert audio.size == 25 * 160
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64)))
    freqs = np.fft.rfftfreq(audio.size, 1 / 8000)
    loud = set(np.round(freqs[spectrum > spectrum.max() / 2]).astype(int))
    assert any(abs(f - 1000) < 20 for f in loud) and any(abs(f - 600) < 20 for f in loud)
    assert room.listeners == []
    row = context.store.rows[live.sid]
    assert (row.source, row.conference_sid, row.channels) == ("Conference", "CF1", 1)
    posted = dict(context.outbox.posted[-1]["params"])
    assert posted["ConferenceSid"] == "CF1" and posted["RecordingStatus"] == "completed"


async def test_a_recording_with_no_audio_is_absent(world):
    context, _clock, call, recordings = world
    live = await recordings.start(
        context,
        "AC1",
        call,
        NewRecording(status_callback="https://app.example/rec", status_callback_events=("absent",)),
    )
    await live.stop()  # no tick passed: nothing was recorded
    assert context.store.statuses(live.sid) == ["absent"]
    [posted] = context.outbox.posted
    params = dict(posted["params"])
    assert params["RecordingStatus"] == "absent" and params["ErrorCode"] == "0"
    assert params["RecordingDuration"] == "0"


class ConferenceStore(FakeStore):
    async def insert_conference(self, record):
        return record

    async def update_conference(self, sid, **fields):
        return None

    async def insert_participant(self, record):
        return record

    async def update_participant(self, conference_sid, call_sid, **fields):
        return None


class Party:
    """A runner's view of a call that joins a conference."""

    def __init__(self, sid: str, context: FakeContext) -> None:
        self.call = self
        self.sid = sid
        self.leg = RoomLeg()
        self.ended = asyncio.Event()
        self.account_sid = "AC1"
        self.services = self
        self.voice = self
        self.context = context

    async def answer(self) -> bool:
        return True

    def log(self, *args, **fields) -> None:
        pass


async def test_conference_record_from_start_records_until_the_end(tmp_path):
    from control_api.twiml.verbs import Conference
    from control_api.voice.conference import Conferences

    context = FakeContext(tmp_path)
    context.store = ConferenceStore()
    clock = FakeClock()
    conferences = Conferences(context.store, clock)
    noun = Conference(
        name="room",
        beep="false",
        record="record-from-start",
        trim="do-not-trim",
        recording_status_callback="https://app.example/conf",
        recording_status_callback_event=("in-progress", "completed"),
    )
    alice, bob = Party("CA" + "a" * 32, context), Party("CA" + "b" * 32, context)
    joined = [asyncio.ensure_future(conferences.join(p, noun)) for p in (alice, bob)]
    for _ in range(5):
        await asyncio.sleep(0)
    [room] = conferences.rooms.values()
    [live] = room.recordings
    for _ in range(25):
        alice.leg.on_frame(frame(1000.0))
        clock.tick()
    sid = await conferences.update_recording("AC1", room.sid, CURRENT, "paused", "skip")
    assert sid == live.sid and live.status == "paused"
    elsewhere = "CF" + "0" * 32
    assert await conferences.update_recording("AC1", elsewhere, CURRENT, "paused", "skip") is None
    await conferences.update_recording("AC1", room.sid, live.sid, "in-progress", "silence")
    for _ in range(25):
        bob.leg.on_frame(frame(600.0))
        clock.tick()
    for party in (alice, bob):
        party.ended.set()
    await asyncio.gather(*joined)
    await room.journal.flush()
    assert live.status == "stopped"
    row = context.store.rows[live.sid]
    assert (row.source, row.conference_sid, row.call_sid) == ("Conference", room.sid, alice.sid)
    assert context.store.statuses(live.sid) == ["paused", "in-progress", "completed"]
    audio = samples(live.recording.path)[:, 0]
    assert audio.size == 50 * 160
    assert strongest(audio[: 25 * 160]) == pytest.approx(1000.0, abs=20)
    assert strongest(audio[25 * 160 :]) == pytest.approx(600.0, abs=20)
    statuses = [dict(p["params"])["RecordingStatus"] for p in context.outbox.posted]
    assert statuses == ["in-progress", "completed"]


async def test_a_call_has_at_most_max_running_recordings(world):
    from control_api.voice.live_recording import MAX_RUNNING

    context, _clock, call, recordings = world
    running = [
        await recordings.start(context, "AC1", call, NewRecording()) for _ in range(MAX_RUNNING)
    ]
    with pytest.raises(ValueError, match="at most"):
        await recordings.start(context, "AC1", call, NewRecording())
    await running[0].stop()  # a stopped one makes room
    await recordings.start(context, "AC1", call, NewRecording())
    assert len(call.leg.tap.taps) == MAX_RUNNING  # each running one listens, no more
