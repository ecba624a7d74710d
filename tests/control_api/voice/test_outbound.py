"""Calls placed by REST (outbound.py) with fakes, no sockets: the call is stored as
queued, rings every destination, and once one answers runs its TwiML on the shared
path (twiml_call.py) with SendDigits, TimeLimit and Record; nobody answering, or a
REST cancel while it rings, gives it its final status. Each change is in the store
and on the status callbacks asked for, and the call is priced."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from control_api.calls.call import CallTimes
from control_api.calls.dialer import DialRefused
from control_api.calls.leg import Placing
from control_api.voice.context import TaskSupervisor
from control_api.voice.live import LocalLiveCalls
from control_api.voice.outbound import place_call
from control_api.voice.port import NewCall, Unroutable
from control_api.voice.runtime import VoiceRuntime
from media.leg import Leg

EVERY_EVENT = frozenset({"initiated", "ringing", "answered", "completed"})


class DigitLeg(Leg):
    """A media leg that keeps the DTMF sent through it."""

    def __init__(self) -> None:
        super().__init__()
        self.digits: list[str] = []

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        self.digits.append(digit)


class Phone(Placing, CallTimes):
    """A destination: it rings, then answers (True), fails with ``failure`` (False) or
    rings until it is canceled (None)."""

    def __init__(self, sid: str, answers: bool | None, failure: str = "busy") -> None:
        self.sid = sid
        self.answers = answers
        self.failure = failure
        self.ended = asyncio.Event()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.on_answered: list = []
        self.on_ringing: list = []
        self.canceled = False
        self.leg = DigitLeg()
        self.media = SimpleNamespace(clock=None)
        self.logged: list[tuple[str, dict]] = []

    @property
    def call_id(self) -> str:
        return self.sid

    async def _connect(self) -> bool:
        await asyncio.sleep(0.01)
        for callback in self.on_ringing:
            callback(self)
        await asyncio.sleep(0.01)
        if self.answers is None:
            await self.ended.wait()
            return False
        if not self.answers:
            self._end()
            return False
        self.answer_time = time.time()
        for callback in self.on_answered:
            callback(self)
        return True

    async def answer(self) -> bool:
        return self.answered and not self.ended.is_set()

    def cancel(self) -> None:
        if self.answered or self.ended.is_set():
            return
        self.canceled = True
        self._end()

    def hangup(self) -> None:
        self._end()

    def _end(self) -> None:
        if not self.ended.is_set():
            self.end_time = time.time()
            self.ended.set()

    @property
    def status(self) -> str:
        if self.ended.is_set():
            if self.answered:
                return "completed"
            return "canceled" if self.canceled else self.failure
        return "in-progress" if self.answered else "ringing"

    def log(self, event: str, **fields) -> None:
        self.logged.append((event, fields))


class FakeDialer:
    def __init__(self, phones: list[Phone], refuse: bool = False) -> None:
        self.phones = phones
        self.refuse = refuse
        self.placed: list[dict] = []

    async def resolve(self, account_sid, to, *, username, password, source_ip):
        if self.refuse:
            raise DialRefused("denied by --dial-deny", "dial.deny")
        return [SimpleNamespace(trunk=None, label=to) for _ in self.phones]

    def call(self, destination, *, from_user, timeout, sid, trunk_caller_id=False):
        phone = self.phones[len(self.placed)]
        self.placed.append(
            {"from_user": from_user, "timeout": timeout, "sid": sid, "trunk": trunk_caller_id}
        )
        phone.sid = sid
        return phone


class FakeStore:
    def __init__(self) -> None:
        self.calls: list = []
        self.updates: list[tuple[str, dict]] = []
        self.recordings: list = []
        self.recording_updates: list[tuple[str, dict]] = []

    async def insert_call(self, record) -> None:
        self.calls.append(record)

    async def update_call(self, sid: str, **fields) -> bool:
        self.updates.append((sid, fields))
        return True

    async def insert_recording(self, record) -> None:
        self.recordings.append(record)

    async def update_recording(self, sid: str, **fields) -> None:
        self.recording_updates.append((sid, fields))

    def statuses(self) -> list[str]:
        return [fields["status"] for _, fields in self.updates if "status" in fields]


class FakeOutbox:
    def __init__(self) -> None:
        self.posted: list[dict] = []

    async def enqueue(self, **item) -> None:
        self.posted.append(item)

    def call_statuses(self) -> list[str]:
        return [dict(item["params"])["CallStatus"] for item in self.posted if item["url"] == "cb"]


class FakeBilling:
    def __init__(self) -> None:
        self.priced: list[dict] = []

    async def call_finished(self, **call) -> None:
        self.priced.append(call)


class FakeWebhooks:
    """The application: answers every TwiML request with ``twiml``."""

    def __init__(self, twiml: str) -> None:
        self.twiml = twiml
        self.requests: list[tuple[str, str, dict]] = []

    async def fetch_twiml(self, url, method, fields, token) -> str:
        self.requests.append((url, method, dict(fields)))
        return self.twiml


class FakeContext:
    def __init__(self, phones: list[Phone], twiml: str, tmp_path, refuse: bool = False) -> None:
        self.store = FakeStore()
        self.outbox = FakeOutbox()
        self.billing = FakeBilling()
        self.webhooks = FakeWebhooks(twiml)
        self.dialer = FakeDialer(phones, refuse)
        self.browsers = None
        self.conferences = None
        self.tasks = TaskSupervisor()
        self.recordings_dir = tmp_path
        self.base_url = "http://api"
        self.fetch_guard = None

    async def token_of(self, account_sid: str) -> str:
        return "token"

    async def synthesize(self, text, voice, language):  # no <Say> in these tests
        raise AssertionError("nothing is spoken")

    async def load_audio(self, url):
        raise AssertionError("nothing is played")


async def settle(context: FakeContext) -> None:
    """Wait until the call placed in the background has ended and is written."""
    for _ in range(400):
        if not len(context.tasks):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the placed call is still running")


def new_call(**fields) -> NewCall:
    defaults = {
        "to": "+15550001111",
        "from_": "+15559990000",
        "url": "http://app/voice",
        "status_callback": "cb",
        "status_callback_events": EVERY_EVENT,
    }
    return NewCall(**{**defaults, **fields})


HANGUP = "<Response><Hangup/></Response>"


async def test_a_placed_call_rings_answers_runs_its_twiml_and_completes(tmp_path):
    phone = Phone("", answers=True)
    context = FakeContext([phone], HANGUP, tmp_path)
    runtime = VoiceRuntime(context)
    record = await place_call(runtime, "AC1", new_call())
    assert record.status == "queued" and record.direction == "outbound-api"
    assert context.store.calls == [record]  # stored before the API answers
    assert context.dialer.placed == [
        {"from_user": "+15559990000", "timeout": 60, "sid": record.sid, "trunk": True}
    ]  # a trunk's caller_id replaces a REST call's From on the hops through it
    await asyncio.sleep(0.005)
    assert runtime.live_calls.find("AC1", record.sid) is not None  # live while it rings
    await settle(context)
    [(url, method, fields)] = context.webhooks.requests
    assert (url, method) == ("http://app/voice", "POST")
    assert fields["CallStatus"] == "in-progress" and fields["Direction"] == "outbound-api"
    assert phone.ended.is_set()  # <Hangup/>
    assert context.store.statuses() == ["ringing", "in-progress", "completed"]
    assert context.outbox.call_statuses() == ["initiated", "ringing", "in-progress", "completed"]
    [priced] = context.billing.priced
    assert priced["direction"] == "outbound-api" and priced["status"] == "completed"
    assert len(runtime.live_calls) == 0
    assert ("call.completed", {"status": "completed", "errors": 0}) in phone.logged


async def test_inline_twiml_runs_and_only_the_asked_events_are_posted(tmp_path):
    phone = Phone("", answers=True)
    context = FakeContext([phone], "unused", tmp_path)
    twiml = "<Response><Hangup/></Response>"
    new = new_call(url=None, twiml=twiml, status_callback_events=frozenset({"completed"}))
    await place_call(VoiceRuntime(context), "AC1", new)
    await settle(context)
    assert context.webhooks.requests == []  # its TwiML came with the request
    assert context.outbox.call_statuses() == ["completed"]


async def test_send_digits_go_out_before_its_twiml_is_fetched(tmp_path):
    phone = Phone("", answers=True)
    context = FakeContext([phone], HANGUP, tmp_path)
    sent_at_fetch: list[list[str]] = []
    fetch = context.webhooks.fetch_twiml

    async def fetch_twiml(url, method, fields, token):
        sent_at_fetch.append(list(phone.leg.digits))
        return await fetch(url, method, fields, token)

    context.webhooks.fetch_twiml = fetch_twiml
    await place_call(VoiceRuntime(context), "AC1", new_call(send_digits="12#"))
    await settle(context)
    assert sent_at_fetch == [["1", "2", "#"]]


async def test_the_time_limit_hangs_up_a_call_whose_twiml_goes_on(tmp_path):
    phone = Phone("", answers=True)
    context = FakeContext([phone], '<Response><Pause length="30"/></Response>', tmp_path)
    started = time.monotonic()
    await place_call(VoiceRuntime(context), "AC1", new_call(time_limit=0.1))
    await settle(context)
    assert time.monotonic() - started < 3
    assert phone.ended.is_set()
    assert context.store.statuses()[-1] == "completed"
    assert context.outbox.call_statuses()[-1] == "completed"


async def test_record_true_records_the_whole_call_and_reports_it(tmp_path):
    phone = Phone("", answers=True)
    context = FakeContext([phone], HANGUP, tmp_path)
    new = new_call(record=True, recording_status_callback="http://app/recording")
    record = await place_call(VoiceRuntime(context), "AC1", new)
    await settle(context)
    [recording] = context.store.recordings
    assert recording.call_sid == record.sid and recording.source == "OutboundAPI"
    assert recording.channels == 1  # both directions, mixed
    assert (tmp_path / recording.file_path).exists()
    assert context.store.recording_updates[0][1]["status"] == "completed"
    assert phone.leg.tap is None  # the recording stopped listening
    [completed] = [
        dict(item["params"])
        for item in context.outbox.posted
        if item["url"] == "cb" and dict(item["params"])["CallStatus"] == "completed"
    ]
    assert completed["RecordingSid"] == recording.sid
    assert (
        completed["RecordingUrl"]
        == f"http://api/2010-04-01/Accounts/AC1/Recordings/{recording.sid}"
    )
    assert completed["RecordingDuration"] == "0"
    recorded = [item for item in context.outbox.posted if item["url"] == "http://app/recording"]
    assert [dict(item["params"])["RecordingStatus"] for item in recorded] == ["completed"]


async def test_the_first_destination_to_answer_wins(tmp_path):
    busy, answering = Phone("", answers=False), Phone("", answers=True)
    context = FakeContext([busy, answering], HANGUP, tmp_path)
    await place_call(VoiceRuntime(context), "AC1", new_call())
    await settle(context)
    assert answering.answered and not busy.canceled
    assert context.store.statuses()[-1] == "completed"


async def test_nobody_answering_gives_the_destinations_failure(tmp_path):
    busy = Phone("", answers=False, failure="busy")
    silent = Phone("", answers=False, failure="no-answer")
    context = FakeContext([busy, silent], HANGUP, tmp_path)
    runtime = VoiceRuntime(context)
    await place_call(runtime, "AC1", new_call())
    await settle(context)
    assert context.webhooks.requests == []  # no TwiML for a call nobody answered
    assert context.store.statuses() == ["ringing", "busy"]
    assert context.outbox.call_statuses() == ["initiated", "ringing", "busy"]
    [priced] = context.billing.priced
    assert priced["status"] == "busy" and priced["duration_s"] == 0
    assert len(runtime.live_calls) == 0


async def test_a_rest_cancel_while_it_rings_ends_it_canceled(tmp_path):
    phone = Phone("", answers=None)
    context = FakeContext([phone], HANGUP, tmp_path)
    runtime = VoiceRuntime(context)
    record = await place_call(runtime, "AC1", new_call())
    await asyncio.sleep(0.05)  # ringing now
    assert await asyncio.wait_for(LocalLiveCalls(runtime).cancel("AC1", record.sid), 2)
    # The API answers once the final record is written.
    assert context.store.statuses()[-1] == "canceled"
    await settle(context)
    assert context.outbox.call_statuses()[-1] == "canceled"


async def test_a_rest_cancel_stops_every_destination_ringing(tmp_path):
    first, second = Phone("", answers=None), Phone("", answers=None)
    context = FakeContext([first, second], HANGUP, tmp_path)
    runtime = VoiceRuntime(context)
    record = await place_call(runtime, "AC1", new_call())
    await asyncio.sleep(0.05)  # both ringing now
    assert await asyncio.wait_for(LocalLiveCalls(runtime).cancel("AC1", record.sid), 2)
    await settle(context)
    assert first.canceled and second.canceled
    assert context.webhooks.requests == []  # neither went on to answer and run TwiML
    assert context.store.statuses()[-1] == "canceled"


async def test_nothing_to_ring_is_unroutable(tmp_path):
    context = FakeContext([], HANGUP, tmp_path)
    with pytest.raises(Unroutable) as nowhere:
        await place_call(VoiceRuntime(context), "AC1", new_call())
    assert not nowhere.value.refused and context.store.calls == []
    refused = FakeContext([Phone("", answers=True)], HANGUP, tmp_path, refuse=True)
    with pytest.raises(Unroutable) as denied:
        await place_call(VoiceRuntime(refused), "AC1", new_call())
    assert denied.value.refused and "Not authorized" in str(denied.value)
