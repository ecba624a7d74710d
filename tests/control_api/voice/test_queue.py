"""``<Enqueue>`` and ``<Dial><Queue>`` with fake calls and legs over a real store: the
wait document and its parameters, the whisper, the bridge, and every QueueResult."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from control_api.store import Store
from control_api.voice.context import TaskSupervisor
from control_api.voice.queue import CallQueues
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from control_api.webhooks import WebhookError
from media.leg import Frame, Leg


class FakeLeg(Leg):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def send_payload(self, payload: bytes) -> None:
        self.sent.append(payload)


class FakeCall:
    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.leg = FakeLeg()
        self.ended = asyncio.Event()
        self.answered = False
        self.events: list[str] = []

    async def answer(self) -> bool:
        self.answered = not self.ended.is_set()
        return self.answered

    def hangup(self) -> None:
        self.ended.set()

    def log(self, event: str, **fields) -> None:
        self.events.append(event)


class App:
    """TwiML by URL; what was asked, in order."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.asked: list[tuple[str, dict]] = []

    async def fetch(self, url: str, method: str, fields: list[tuple[str, str]]) -> str:
        self.asked.append((url, dict(fields)))
        if url not in self.pages:
            raise WebhookError(f"{url}: refused")
        return self.pages[url]

    def fields(self, url: str) -> list[dict]:
        return [fields for asked, fields in self.asked if asked == url]


def twiml(body: str) -> str:
    return f"<Response>{body}</Response>"


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(f"sqlite:///{tmp_path / 'queues.db'}")
    yield store
    await store.close()


@pytest.fixture
async def account(store):
    return await store.accounts.create("queues")


@pytest.fixture
def voice(store):
    context = SimpleNamespace(
        store=store,
        queues=CallQueues(),
        tasks=TaskSupervisor(),
        dialer=object(),
        call_log=None,
        rtpengines=None,
    )
    return SimpleNamespace(context=context)


def start(voice, app: App, account, sid: str, url: str) -> tuple[FakeCall, TwimlRunner]:
    call = FakeCall(sid)
    services = VoiceServices(app.fetch, _no_media, _no_media, context=voice.context)
    runner = TwimlRunner(call, services, lambda: [("CallSid", sid)], account_sid=account.sid)
    runner.start(Document(url))
    return call, runner


async def _no_media(*args) -> object:
    raise AssertionError("no speech or audio files here")


async def until(condition, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def members(store, account, name: str) -> list[str]:
    queue = await store.queues.named(account.sid, name)
    found = await store.queue_members.page(account.sid, queue.sid) if queue else []
    return [member.call_sid for member in found]


WAIT = twiml('<Pause length="10"/>')


async def test_an_agent_is_bridged_with_the_front_caller(store, account, voice):
    app = App(
        {
            "http://app/caller": twiml(
                '<Enqueue action="/after" waitUrl="/wait">support</Enqueue>'
            ),
            "http://app/wait": WAIT,
            "http://app/after": twiml("<Hangup/>"),
            "http://app/agent": twiml(
                '<Dial action="/dialed"><Queue url="/whisper">support</Queue></Dial>'
            ),
            "http://app/whisper": twiml('<Pause length="1"/>'),
            "http://app/dialed": twiml("<Hangup/>"),
        }
    )
    first, _ = start(voice, app, account, "CAfirst", "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    second, _ = start(voice, app, account, "CAsecond", "http://app/caller")
    await until(lambda: len(app.fields("http://app/wait")) == 2)
    wait = app.fields("http://app/wait")
    assert wait[0]["QueuePosition"] == "1" and wait[1]["QueuePosition"] == "2"
    assert wait[1]["CurrentQueueSize"] == "2" and wait[1]["MaxQueueSize"] == "1000"
    assert set(wait[1]) >= {"QueueSid", "QueueTime", "AvgQueueTime"}
    assert await members(store, account, "support") == ["CAfirst", "CAsecond"]

    agent, _ = start(voice, app, account, "CAagent", "http://app/agent")
    await until(lambda: "queue.bridged" in agent.events)
    whisper = app.fields("http://app/whisper")[0]
    assert (whisper["CallSid"], whisper["DequeingCallSid"]) == ("CAfirst", "CAagent")
    agent.leg.on_frame(Frame("PCMU", b"agent", 160, 0))
    first.leg.on_frame(Frame("PCMU", b"caller", 160, 0))
    assert first.leg.sent[-1] == b"agent" and agent.leg.sent[-1] == b"caller"
    await until(lambda: not voice.context.tasks)
    assert await members(store, account, "support") == ["CAsecond"]

    agent.hangup()
    await until(lambda: app.fields("http://app/after") and app.fields("http://app/dialed"))
    after = app.fields("http://app/after")[0]
    assert after["QueueResult"] == "bridged" and after["QueueSid"] == wait[0]["QueueSid"]
    dialed = app.fields("http://app/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["DialCallSid"]) == ("completed", "CAfirst")
    assert dialed["QueueSid"] == wait[0]["QueueSid"]
    await until(first.ended.is_set)  # its action's <Hangup/>
    second.hangup()
    await until(lambda: len(app.fields("http://app/after")) == 2)
    assert app.fields("http://app/after")[1]["QueueResult"] == "hangup"
    await until(lambda: voice.context.queues.lines == {})


async def test_leave_in_the_wait_document_goes_on_after_enqueue(store, account, voice):
    app = App(
        {
            "http://app/caller": twiml(
                '<Enqueue waitUrl="/wait">line</Enqueue><Redirect>/next</Redirect>'
            ),
            "http://app/wait": twiml("<Leave/>"),
            "http://app/next": twiml("<Hangup/>"),
        }
    )
    call, _ = start(voice, app, account, "CA1", "http://app/caller")
    await until(call.ended.is_set)
    assert [url for url, _ in app.asked] == [
        "http://app/caller",
        "http://app/wait",
        "http://app/next",
    ]
    await until(lambda: not voice.context.tasks)
    assert await members(store, account, "line") == []


async def test_a_full_queue_turns_the_caller_away(store, account, voice):
    app = App(
        {
            "http://app/caller": twiml(
                '<Enqueue maxQueueSize="1" action="/full" waitUrl="/wait">tiny</Enqueue>'
            ),
            "http://app/wait": WAIT,
            "http://app/full": twiml("<Hangup/>"),
        }
    )
    first, _ = start(voice, app, account, "CA1", "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    second, _ = start(voice, app, account, "CA2", "http://app/caller")
    await until(second.ended.is_set)
    assert app.fields("http://app/full") == [{"CallSid": "CA2", "QueueResult": "queue-full"}]
    first.hangup()
    await until(lambda: len(app.fields("http://app/full")) == 2)


async def test_a_rest_redirect_dequeues_and_reports_redirected(store, account, voice):
    app = App(
        {
            "http://app/caller": twiml('<Enqueue action="/after" waitUrl="/wait">r</Enqueue>'),
            "http://app/wait": WAIT,
            "http://app/after": twiml("<Say>ignored</Say>"),
            "http://app/elsewhere": twiml("<Hangup/>"),
        }
    )
    call, runner = start(voice, app, account, "CA1", "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    runner.redirect(Document("http://app/elsewhere"))
    await until(call.ended.is_set)
    await until(lambda: app.fields("http://app/after"))
    assert app.fields("http://app/after")[0]["QueueResult"] == "redirected"
    await until(lambda: not voice.context.tasks)
    assert await members(store, account, "r") == []


async def test_without_a_queue_or_a_caller_the_dial_fails_or_times_out(store, account, voice):
    app = App(
        {
            "http://app/none": twiml('<Dial action="/dialed"><Queue>absent</Queue></Dial>'),
            "http://app/empty": twiml(
                '<Dial timeout="1" action="/dialed"><Queue>empty</Queue></Dial>'
            ),
            "http://app/dialed": twiml("<Hangup/>"),
        }
    )
    await store.queues.create(account.sid, "empty", 10)
    start(voice, app, account, "CA1", "http://app/none")
    await until(lambda: app.fields("http://app/dialed"))
    assert app.fields("http://app/dialed")[0]["DialCallStatus"] == "failed"
    start(voice, app, account, "CA2", "http://app/empty")
    await until(lambda: len(app.fields("http://app/dialed")) == 2, timeout=4)
    assert app.fields("http://app/dialed")[1]["DialCallStatus"] == "no-answer"


async def test_a_caller_whose_agent_leaves_during_the_whisper_waits_again(store, account, voice):
    app = App(
        {
            "http://app/caller": twiml('<Enqueue action="/after" waitUrl="/wait">w</Enqueue>'),
            "http://app/wait": WAIT,
            "http://app/after": twiml("<Hangup/>"),
            "http://app/agent": twiml('<Dial><Queue url="/whisper">w</Queue></Dial>'),
            "http://app/whisper": twiml('<Pause length="2"/>'),
        }
    )
    caller, _ = start(voice, app, account, "CA1", "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    agent, _ = start(voice, app, account, "CA2", "http://app/agent")
    await until(lambda: app.fields("http://app/whisper"))
    agent.hangup()
    await until(lambda: len(app.fields("http://app/wait")) == 2, timeout=4)
    assert app.fields("http://app/wait")[1]["QueuePosition"] == "1"
    await until(lambda: not voice.context.tasks)
    assert await members(store, account, "w") == ["CA1"]
    caller.hangup()
    await until(lambda: app.fields("http://app/after"))
    assert app.fields("http://app/after")[0]["QueueResult"] == "hangup"
