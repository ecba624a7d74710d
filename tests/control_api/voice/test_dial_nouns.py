"""``<Dial>`` nouns' own attributes with fakes (no sockets): a whisper ``url`` runs on
the callee before the bridge (``<Hangup>`` there refuses the call, DialCallStatus
``no-answer``), ``sequential`` rings noun after noun, ``ringTone`` picks the ringback
(13220 for a value Twilio does not list), a noun's ``statusCallbackEvent`` sends only
the child-call callbacks asked for, and ``<Sip>`` credentials reach the dialer."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np

from control_api.twiml.parser import parse_voice_twiml
from control_api.voice.context import TaskSupervisor
from control_api.voice.dial import dial
from control_api.voice.runner import TwimlRunner, VoiceServices
from media.ring_tones import ring_tone

from .test_outbound import FakeBilling, FakeOutbox, FakeStore, Phone


class Dialer:
    """Each address rings its own phone; remembers when each was placed."""

    def __init__(self, phones: dict[str, Phone]) -> None:
        self.phones = phones
        self.resolved: list[tuple[str, str | None, str | None]] = []
        # Each call placed, and whether every call placed before it had ended by then.
        self.placed: list[tuple[str, bool]] = []

    async def resolve(self, account_sid, address, *, username, password, source_ip):
        self.resolved.append((address, username, password))
        return [SimpleNamespace(trunk=None, label=address)]

    def call(self, destination, *, from_user, timeout, trunk_caller_id=False):
        earlier = [self.phones[label] for label, _ in self.placed]
        self.placed.append((destination.label, all(p.ended.is_set() for p in earlier)))
        return self.phones[destination.label]


class Application:
    """TwiML by URL; remembers every request."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.asked: list[tuple[str, dict]] = []
        self.spoken: list[str] = []

    async def fetch(self, url, method, fields) -> str:
        self.asked.append((url, dict(fields)))
        return self.pages[url]

    async def synthesize(self, text, voice, language):
        self.spoken.append(text)
        return np.zeros(0, dtype=np.int16)

    async def load_audio(self, url):
        raise AssertionError("nothing is played")

    def asked_for(self, url: str) -> list[dict]:
        return [fields for asked, fields in self.asked if asked == url]


def context(phones: dict[str, Phone]) -> SimpleNamespace:
    return SimpleNamespace(
        store=FakeStore(),
        outbox=FakeOutbox(),
        billing=FakeBilling(),
        dialer=Dialer(phones),
        browsers=None,
        conferences=None,
        tasks=TaskSupervisor(),
        refused=lambda *a, **k: None,
        rtpengines=None,
    )


def caller() -> Phone:
    call = Phone("CAparent", True)
    call.answer_time = time.time()  # the caller is up: it hears the ringback
    call.ring = lambda: None
    return call


def runner_for(call: Phone, ctx, app: Application) -> TwimlRunner:
    services = VoiceServices(app.fetch, app.synthesize, app.load_audio, context=ctx)
    runner = TwimlRunner(call, services, lambda: [("CallSid", call.sid)], account_sid="AC1")
    runner.document_url = "http://app/voice"
    return runner


def verb(body: str):
    [dial_verb] = parse_voice_twiml(f"<Response>{body}</Response>").verbs
    return dial_verb


async def test_a_whisper_hangup_refuses_the_call_as_not_answered():
    callee = Phone("CAchild", True)
    ctx = context({"+15550001": callee})
    app = Application({"http://app/screen": "<Response><Hangup/></Response>"})
    runner = runner_for(caller(), ctx, app)
    outcome = await asyncio.wait_for(
        dial(runner, verb('<Dial><Number url="/screen">+15550001</Number></Dial>')), 5
    )
    assert outcome.status == "no-answer" and not outcome.bridged
    assert outcome.child is callee and callee.answered and callee.ended.is_set()
    [asked] = app.asked_for("http://app/screen")  # resolved against the document
    assert asked["CallSid"] == "CAchild" and asked["ParentCallSid"] == "CAparent"
    assert asked["Direction"] == "outbound-dial" and asked["CallStatus"] == "in-progress"
    assert asked["To"] == "+15550001"


async def test_a_whisper_that_runs_out_of_verbs_accepts_and_the_bridge_follows():
    callee = Phone("CAchild", True)
    ctx = context({"+15550001": callee})
    app = Application(
        {
            "http://app/screen": "<Response><Say>A call for you</Say>"
            "<Redirect>/screen2</Redirect></Response>",
            "http://app/screen2": "<Response><Dial>+15550009</Dial></Response>",
        }
    )
    parent = caller()
    runner = runner_for(parent, ctx, app)
    asyncio.get_running_loop().call_later(0.3, parent.hangup)
    outcome = await asyncio.wait_for(
        dial(runner, verb('<Dial><Number url="/screen">+15550001</Number></Dial>')), 5
    )
    assert outcome.status == "completed" and outcome.bridged and outcome.child is callee
    assert app.spoken == ["A call for you"]
    assert len(app.asked_for("http://app/screen2")) == 1  # its <Dial> is skipped
    assert [label for label, _ in ctx.dialer.placed] == ["+15550001"]


async def test_a_refused_whisper_lets_another_party_win():
    refuses, accepts = Phone("CA1", True), Phone("CA2", True)
    ctx = context({"+15550001": refuses, "+15550002": accepts})
    app = Application({"http://app/no": "<Response><Reject/></Response>"})
    parent = caller()
    runner = runner_for(parent, ctx, app)
    asyncio.get_running_loop().call_later(0.3, parent.hangup)
    body = '<Dial><Number url="/no">+15550001</Number><Number>+15550002</Number></Dial>'
    outcome = await asyncio.wait_for(dial(runner, verb(body)), 5)
    assert outcome.bridged and outcome.child is accepts
    assert refuses.ended.is_set()


async def test_sequential_rings_the_second_only_after_the_first_failed():
    busy, answers = Phone("CA1", False, "busy"), Phone("CA2", True)
    ctx = context({"+15550001": busy, "+15550002": answers})
    parent = caller()
    runner = runner_for(parent, ctx, Application({}))
    asyncio.get_running_loop().call_later(0.3, parent.hangup)
    body = '<Dial sequential="true"><Number>+15550001</Number><Number>+15550002</Number></Dial>'
    outcome = await asyncio.wait_for(dial(runner, verb(body)), 5)
    assert outcome.bridged and outcome.child is answers
    assert ctx.dialer.placed == [("+15550001", True), ("+15550002", True)]
    assert ctx.store.calls[0].sid == "CA1" and len(ctx.store.calls) == 2


async def test_sequential_reports_the_failures_when_nobody_answers():
    busy, no_answer = Phone("CA1", False, "busy"), Phone("CA2", False, "no-answer")
    ctx = context({"+15550001": busy, "+15550002": no_answer})
    runner = runner_for(caller(), ctx, Application({}))
    body = '<Dial sequential="true"><Number>+15550001</Number><Number>+15550002</Number></Dial>'
    outcome = await asyncio.wait_for(dial(runner, verb(body)), 5)
    assert outcome.status == "no-answer" and not outcome.bridged
    assert [label for label, _ in ctx.dialer.placed] == ["+15550001", "+15550002"]


async def test_parallel_nouns_are_all_placed_before_any_answers():
    a, b = Phone("CA1", None), Phone("CA2", True)
    ctx = context({"+15550001": a, "+15550002": b})
    parent = caller()
    runner = runner_for(parent, ctx, Application({}))
    asyncio.get_running_loop().call_later(0.3, parent.hangup)
    body = "<Dial><Number>+15550001</Number><Number>+15550002</Number></Dial>"
    outcome = await asyncio.wait_for(dial(runner, verb(body)), 5)
    assert outcome.child is b and a.canceled
    assert ctx.dialer.placed == [("+15550001", True), ("+15550002", False)]


async def test_ring_tone_plays_the_country_ringback_and_warns_on_an_unknown_one(monkeypatch):
    from control_api.voice import dial as dial_module

    played: list[np.ndarray] = []

    async def fake_play(leg, samples, *, loop=1):
        played.append(samples)
        await asyncio.Event().wait()

    monkeypatch.setattr(dial_module, "play", fake_play)
    for tone, expected, errors in (("uk", "uk", []), ("xx", "us", ["13220"])):
        ctx = context({"+15550001": Phone("CA1", False)})
        parent = caller()
        parent.leg = SimpleNamespace()
        runner = runner_for(parent, ctx, Application({}))
        await dial(runner, verb(f'<Dial ringTone="{tone}">+15550001</Dial>'))
        assert played[-1] is ring_tone(expected)
        assert [e.split()[0] for e in runner.errors] == errors


async def test_status_callback_events_send_only_those_asked():
    callee = Phone("CAchild", True)
    ctx = context({"+15550001": callee})
    parent = caller()
    runner = runner_for(parent, ctx, Application({}))
    asyncio.get_running_loop().call_later(0.2, parent.hangup)
    body = (
        '<Dial><Number statusCallback="http://app/cb" statusCallbackEvent="ringing answered">'
        "+15550001</Number></Dial>"
    )
    await asyncio.wait_for(dial(runner, verb(body)), 5)
    for _ in range(50):  # the child's record and callbacks are written in the background
        if len(ctx.outbox.posted) >= 2 and callee.ended.is_set():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    statuses = [dict(item["params"])["CallStatus"] for item in ctx.outbox.posted]
    assert statuses == ["ringing", "in-progress"]
    assert all(item["url"] == "http://app/cb" for item in ctx.outbox.posted)


async def test_sip_credentials_are_given_to_the_dialer():
    ctx = context({"sip:bob@carrier.test": Phone("CA1", False)})
    runner = runner_for(caller(), ctx, Application({}))
    body = '<Dial><Sip username="u1" password="p1">sip:bob@carrier.test</Sip></Dial>'
    await asyncio.wait_for(dial(runner, verb(body)), 5)
    assert ctx.dialer.resolved == [("sip:bob@carrier.test", "u1", "p1")]


async def test_a_whisper_that_fails_is_recorded_and_the_call_goes_ahead():
    callee = Phone("CAchild", True)
    ctx = context({"+15550001": callee})
    app = Application({"http://app/screen": "<Response><Say>hello</Say></Response>"})

    async def broken_speech(text, voice, language):
        raise RuntimeError("no speech engine")

    app.synthesize = broken_speech
    parent = caller()
    runner = runner_for(parent, ctx, app)
    asyncio.get_running_loop().call_later(0.3, parent.hangup)
    outcome = await asyncio.wait_for(
        dial(runner, verb('<Dial><Number url="/screen">+15550001</Number></Dial>')), 5
    )
    assert outcome.bridged and outcome.child is callee
    assert [e.split()[:2] for e in runner.errors] == [["11200", "whisper"]]


async def test_a_whisper_gather_screens_the_call_with_a_key():
    screen = '<Response><Gather numDigits="1" action="/accept" timeout="2"/><Hangup/></Response>'
    pages = {"http://app/screen": screen, "http://app/accept": "<Response/>"}
    for key, bridged in (("1", True), (None, False)):
        callee = Phone("CAchild", True)
        ctx = context({"+15550001": callee})
        app = Application(pages)
        parent = caller()
        runner = runner_for(parent, ctx, app)
        loop = asyncio.get_running_loop()
        if key is not None:
            loop.call_later(0.2, lambda k=key, c=callee: c.leg.on_dtmf(k))
        loop.call_later(2.5, parent.hangup)
        outcome = await asyncio.wait_for(
            dial(runner, verb('<Dial><Number url="/screen">+15550001</Number></Dial>')), 5
        )
        assert outcome.bridged is bridged
        if bridged:
            [accepted] = app.asked_for("http://app/accept")
            assert accepted["Digits"] == "1" and accepted["CallSid"] == "CAchild"
        else:
            assert outcome.status == "no-answer" and not app.asked_for("http://app/accept")
