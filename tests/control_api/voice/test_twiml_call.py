"""The paths the call sources share, with fakes (no sockets): a call running its own
TwiML, and a child call ``<Dial>`` rings. Each writes its record and is priced."""

from __future__ import annotations

import asyncio
import time

from control_api.calls.call import CallTimes
from control_api.voice.context import TaskSupervisor
from control_api.voice.lifecycle import base_params
from control_api.voice.live import LiveCallTable
from control_api.voice.twiml_call import follow_child, incoming_lifecycle, run_call_twiml


class FakeStore:
    def __init__(self) -> None:
        self.inserted: list = []
        self.updates: list[tuple[str, dict]] = []

    async def insert_call(self, record) -> None:
        self.inserted.append(record)

    async def update_call(self, sid: str, **fields) -> bool:
        self.updates.append((sid, fields))
        return True

    def statuses(self, sid: str) -> list[str]:
        return [f["status"] for s, f in self.updates if s == sid and "status" in f]


class FakeOutbox:
    def __init__(self) -> None:
        self.posted: list[dict] = []

    async def enqueue(self, **item) -> None:
        self.posted.append(item)


class FakeBilling:
    def __init__(self) -> None:
        self.priced: list[dict] = []

    async def call_finished(self, **call) -> None:
        self.priced.append(call)


class FakeContext:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.outbox = FakeOutbox()
        self.billing = FakeBilling()
        self.tasks = TaskSupervisor()


class FakeCall(CallTimes):
    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.ended = asyncio.Event()
        self.on_answered: list = []
        self.on_ringing: list = []
        self.status = "queued"
        self.problem = None  # PlacedLeg: nothing went wrong worth a notification

    @property
    def call_id(self) -> str:
        return self.sid

    async def answer(self) -> bool:
        self.answer_time = time.time() - 30  # as if half a minute ago
        for callback in self.on_answered:
            callback(self)
        return True

    def ring(self) -> None:
        self.status = "ringing"
        for callback in self.on_ringing:
            callback(self)

    def hangup(self) -> None:
        self.end_time = time.time()
        self.status = "completed" if self.answered else "canceled"
        self.ended.set()


class FakeRunner:
    """Stands in for the TwiML runner: answers (its first verb would) unless told not to."""

    def __init__(self, call: FakeCall, answers: bool) -> None:
        self.call = call
        self.answers = answers
        self.errors: list[str] = []
        self.started = None

    def start(self, document) -> None:
        self.started = document

    async def wait(self) -> None:
        if self.answers and not self.call.answered:
            await self.call.answer()


class LoggedTable(LiveCallTable):
    """The live-call table, with a log of what the path did to it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def track(self, call, runner, account_sid) -> None:
        super().track(call, runner, account_sid)
        self.events.append(f"track {call.sid} {account_sid}")

    def untrack(self, sid) -> None:
        super().untrack(sid)
        self.events.append(f"untrack {sid}")

    def settled(self, sid) -> None:
        super().settled(sid)
        self.events.append(f"settled {sid}")


class FakeVoice:
    """The runner factory the path uses, and a real (logged) live-call table."""

    def __init__(self, context: FakeContext, *, answers: bool = True) -> None:
        self.context = context
        self.answers = answers
        self.live_calls = LoggedTable()
        self.runner: FakeRunner | None = None

    @property
    def events(self) -> list[str]:
        return self.live_calls.events

    def runner_for(self, call, account_sid, token, lifecycle) -> FakeRunner:
        self.runner = FakeRunner(call, self.answers)
        assert self.live_calls.find(account_sid, call.sid) is None  # tracked after this
        return self.runner


def incoming(context: FakeContext, sid: str, from_: str):
    base = base_params(
        call_sid=sid, account_sid="AC1", from_=from_, to="+1415", direction="inbound"
    )
    return incoming_lifecycle(
        context,
        call_sid=sid,
        account_sid="AC1",
        to="+1415",
        from_=from_,
        base=base,
        status_callback="http://app/status",
        status_callback_method=None,
    )


async def test_a_call_running_its_twiml_is_tracked_recorded_and_priced():
    context = FakeContext()
    voice = FakeVoice(context)
    call = FakeCall("CA1")
    lifecycle = incoming(context, "CA1", "+1999")
    await run_call_twiml(
        voice,
        call,
        lifecycle,
        "the document",
        account_sid="AC1",
        token="token",
        final_status=lambda c: "completed" if c.answered else "failed",
    )
    assert voice.runner.started == "the document"
    assert voice.events == ["track CA1 AC1", "untrack CA1", "settled CA1"]
    assert len(voice.live_calls) == 0
    assert call.ended.is_set()  # the runner ran out of TwiML: we hung up
    assert [r.sid for r in context.store.inserted] == ["CA1"]
    assert context.store.statuses("CA1") == ["in-progress", "completed"]
    callbacks = [dict(item["params"])["CallStatus"] for item in context.outbox.posted]
    assert callbacks == ["initiated", "ringing", "in-progress", "completed"]
    assert all(item["method"] == "POST" for item in context.outbox.posted)
    [priced] = context.billing.priced
    assert priced["sid"] == "CA1" and priced["status"] == "completed"
    assert priced["direction"] == "inbound" and priced["duration_s"] >= 30


async def test_a_tabs_call_is_answered_at_once_and_told_its_final_status():
    context = FakeContext()
    voice = FakeVoice(context, answers=False)  # its TwiML never answers: the path does
    call = FakeCall("CA2")
    finals: list[str] = []
    await run_call_twiml(
        voice,
        call,
        incoming(context, "CA2", "client:alice"),
        "the document",
        account_sid="AC1",
        token="token",
        final_status=lambda c: "completed" if c.answered else "failed",
        answer_at_once=True,
        on_final=finals.append,
    )
    assert finals == ["completed"]
    [priced] = context.billing.priced
    assert priced["from_"] == "client:alice" and priced["status"] == "completed"


async def test_an_unanswered_call_gets_its_final_status_and_is_settled():
    context = FakeContext()
    voice = FakeVoice(context, answers=False)
    call = FakeCall("CA3")
    await run_call_twiml(
        voice,
        call,
        incoming(context, "CA3", "+1999"),
        "the document",
        account_sid="AC1",
        token="token",
        final_status=lambda c: "completed" if c.answered else "failed",
    )
    assert context.store.statuses("CA3") == ["failed"]
    assert voice.events[-1] == "settled CA3"
    assert context.billing.priced[0]["status"] == "failed"  # Billing prices nothing for it


async def test_a_child_call_follows_its_party_until_it_ends_and_is_priced():
    context = FakeContext()
    child = FakeCall("CA9")

    class Noun:
        status_callback = "http://app/child"
        status_callback_method = "GET"
        status_callback_event = ("ringing", "answered", "completed")

    follow_child(
        context,
        child,
        account_sid="AC1",
        parent_sid="CA1",
        to="client:alice",
        caller_id="+1999",
        noun=Noun(),
    )
    await asyncio.sleep(0)
    [record] = context.store.inserted
    assert record.parent_call_sid == "CA1" and record.direction == "outbound-dial"
    assert record.status == "queued" and len(context.tasks) == 1
    child.ring()
    await child.answer()
    child.hangup()
    for _ in range(20):
        if not len(context.tasks):
            break
        await asyncio.sleep(0)
    assert len(context.tasks) == 0
    assert context.store.statuses("CA9") == ["ringing", "in-progress", "completed"]
    posted = [(item["method"], dict(item["params"])) for item in context.outbox.posted]
    assert [p["CallStatus"] for _, p in posted] == ["ringing", "in-progress", "completed"]
    assert {m for m, _ in posted} == {"GET"} and posted[0][1]["ParentCallSid"] == "CA1"
    [priced] = context.billing.priced
    assert priced["to"] == "client:alice" and priced["direction"] == "outbound-dial"
    assert priced["status"] == "completed"


async def test_a_child_without_a_noun_reports_nothing_but_is_recorded():
    context = FakeContext()
    child = FakeCall("CA8")
    follow_child(context, child, account_sid="AC1", parent_sid="CA1", to="+1555", caller_id="+1999")
    child.hangup()
    for _ in range(20):
        await asyncio.sleep(0)
    assert context.outbox.posted == []
    assert context.store.statuses("CA8") == ["canceled"]


async def test_a_rest_hangup_answers_once_the_final_record_is_written():
    """LiveCallTable.end waits for ``settled``: the REST answer shows the call ended."""
    table = LiveCallTable()
    call = FakeCall("CA5")
    table.track(call, None, "AC1")
    assert table.find("AC2", "CA5") is None  # another account's call is not found
    assert table.find("AC1", "CA5").call is call

    def hang_up() -> None:
        call.hangup()
        asyncio.get_running_loop().call_later(0.01, table.settled, "CA5")

    ending = asyncio.create_task(table.end("CA5", hang_up))
    await asyncio.sleep(0)
    assert call.ended.is_set() and not ending.done()
    await asyncio.wait_for(ending, 30)
    assert [live.call.sid for live in table.of_account("AC1")] == ["CA5"]
    table.untrack("CA5")
    assert len(table) == 0
