"""<Connect><ConversationRelay> against a WebSocket application in the test: setup, the
caller's words as prompts, text spoken sentence by sentence, interrupts, DTMF, bad
messages and the end of the session (control_api/voice/conversation_relay.py)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
from websockets.asyncio.server import serve

from control_api.twiml.parser import parse_voice_twiml
from control_api.voice.conversation_relay import run_relay
from control_api.webhooks import sign

TOKEN = "secret-token"


class FakeLeg:
    """Plays as fast as asked: a task takes whatever the source gives, every 2 ms."""

    def __init__(self) -> None:
        self.codec, self.sample_rate = "PCMU", 8000
        self.source = None
        self.closed = False
        self.tap = None
        self.tap_paced = False
        self.on_dtmf = lambda digit: None
        self.sent_dtmf: list[str] = []
        self.played = 0  # frames

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        self.sent_dtmf.append(digit)

    async def clock(self) -> None:
        while True:
            if self.source is not None and self.source() is not None:
                self.played += 1
            await asyncio.sleep(0.002)


class FakeListener:
    def __init__(self, language, hints, on_speech, on_partial=None) -> None:
        self.language, self.on_speech, self.on_partial = language, on_speech, on_partial
        self.result: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.fed = 0

    def feed(self, samples) -> None:
        self.fed += samples.size

    def cancel(self) -> None:
        if not self.result.done():
            self.result.cancel()


def setting(document: str):
    leg = FakeLeg()
    listeners: list[FakeListener] = []
    said: list[str] = []

    def listen(language, hints, on_speech, **partial):
        listeners.append(FakeListener(language, hints, on_speech, **partial))
        return listeners[-1]

    async def synthesize(text, voice, language):
        said.append(text)
        return np.full(8000 // 2 * max(1, len(text.split())), 1000, dtype=np.int16)  # 0.5 s a word

    async def token_of(account_sid):
        return TOKEN

    context = SimpleNamespace(
        synthesize=synthesize,
        load_audio=None,
        token_of=token_of,
        fetch_guard=None,
        call_log=None,
        speech_listener=listen,
    )
    call = SimpleNamespace(
        sid="CA" + "1" * 32, leg=leg, ended=asyncio.Event(), log=lambda *a, **k: None
    )
    runner = SimpleNamespace(
        call=call,
        account_sid="AC" + "2" * 32,
        errors=[],
        services=SimpleNamespace(context=context),
        params=lambda: [("From", "+15550001111"), ("To", "+15550002222"), ("Direction", "inbound")],
    )
    [verb] = parse_voice_twiml(document).verbs
    return runner, leg, listeners, said, verb


async def until(condition, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_conversation_from_setup_to_end():
    got: list[dict] = []
    handshake: dict[str, str] = {}
    application_steps: asyncio.Queue = asyncio.Queue()

    async def application(ws):
        handshake["signature"] = ws.request.headers.get("X-Twilio-Signature", "")
        handshake["path"] = ws.request.path

        async def receive():
            async for message in ws:
                got.append(json.loads(message))

        reading = asyncio.ensure_future(receive())
        while True:
            step = await application_steps.get()
            if step is None:
                break
            await ws.send(step)
        await asyncio.sleep(0.2)
        reading.cancel()

    async with serve(application, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/relay"
        runner, leg, listeners, said, verb = setting(
            f'<Response><Connect action="/done"><ConversationRelay url="{url}" '
            'welcomeGreeting="Hello, how can I help?" dtmfDetection="true">'
            '<Parameter name="customer" value="42"/></ConversationRelay></Connect></Response>'
        )
        clock = asyncio.ensure_future(leg.clock())
        session = asyncio.ensure_future(run_relay(runner, verb))
        try:
            await until(lambda: got and listeners)
            setup = got[0]
            assert setup["type"] == "setup" and setup["callSid"] == runner.call.sid
            assert setup["sessionId"].startswith("VX") and setup["accountSid"] == runner.account_sid
            assert (setup["from"], setup["to"], setup["callType"]) == (
                "+15550001111",
                "+15550002222",
                "PSTN",
            )
            assert setup["customParameters"] == {"customer": "42"}
            assert handshake["signature"] == sign(url, None, TOKEN)
            await until(lambda: said == ["Hello, how can I help?"])

            # The caller's words become a prompt; the reply is spoken a sentence at a time.
            listeners[0].result.set_result(SimpleNamespace(text="I lost my card", confidence=0.8))
            await until(lambda: len(got) >= 2)
            assert got[1] == {
                "type": "prompt",
                "voicePrompt": "I lost my card",
                "lang": "en-US",
                "last": True,
            }
            for token, last in (("I can", False), (" help. Which", False), (" card?", True)):
                await application_steps.put(
                    json.dumps({"type": "text", "token": token, "last": last})
                )
            await until(lambda: said[1:] == ["I can help.", "Which card?"])

            # Talking over the agent cuts it short and tells the application.
            spoken = sum(25 * max(1, len(text.split())) for text in said)  # frames so far
            await until(lambda: leg.played >= spoken)  # the greeting and the reply are over
            await application_steps.put(
                json.dumps(
                    {
                        "type": "text",
                        "token": "Let me read you the whole policy. " * 3,
                        "last": True,
                    }
                )
            )
            await until(lambda: len(said) >= 4)
            await until(lambda: leg.source is not None)
            listeners[-1].on_speech()
            await until(lambda: any(m["type"] == "interrupt" for m in got))
            interrupted = next(m for m in got if m["type"] == "interrupt")
            assert interrupted["utteranceUntilInterrupt"].startswith("Let me read you")
            assert interrupted["durationUntilInterruptMs"] >= 0
            await until(lambda: leg.source is None)

            # Keys go up as dtmf; a bad message is answered with an error.
            leg.on_dtmf("5")
            await until(lambda: {"type": "dtmf", "digit": "5"} in got)
            await application_steps.put(json.dumps({"type": "sing"}))
            await until(lambda: any(m["type"] == "error" for m in got))
            assert runner.errors and runner.errors[-1].startswith("64107")

            await application_steps.put(json.dumps({"type": "sendDigits", "digits": "12#"}))
            await until(lambda: leg.sent_dtmf == ["1", "2", "#"])
            await application_steps.put(
                json.dumps({"type": "end", "handoffData": '{"to":"agent"}'})
            )
            outcome = await asyncio.wait_for(session, 30)
        finally:
            clock.cancel()
            await application_steps.put(None)
    assert (outcome.status, outcome.handoff_data) == ("ended", '{"to":"agent"}')
    params = dict(outcome.params())
    assert params["SessionStatus"] == "ended" and params["SessionId"] == setup["sessionId"]
    assert params["HandoffData"] == '{"to":"agent"}'
    assert leg.tap is None  # the session let go of the call's audio


async def test_an_unreachable_application_fails_the_session():
    runner, _, _, _, verb = setting(
        '<Response><Connect><ConversationRelay url="ws://127.0.0.1:9/x"/></Connect></Response>'
    )
    outcome = await run_relay(runner, verb)
    assert outcome.status == "failed" and "cannot open" in (outcome.error or "")
    assert dict(outcome.params())["ErrorCode"] == "64102"


class Application:
    """A relay application in the test: what it got, and a queue of what to send."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.steps: asyncio.Queue = asyncio.Queue()

    async def __call__(self, ws) -> None:
        async def receive():
            async for message in ws:
                self.got.append(json.loads(message))

        reading = asyncio.ensure_future(receive())
        while (step := await self.steps.get()) is not None:
            await ws.send(json.dumps(step))
        await asyncio.sleep(0.2)
        reading.cancel()


async def test_preemptible_speech_gives_way_to_the_next_talk_cycle_and_partials_come_first():
    app = Application()
    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        greeting = "Welcome to the bank, this greeting is long and may be cut short."
        runner, leg, listeners, said, verb = setting(
            f'<Response><Connect><ConversationRelay url="ws://127.0.0.1:{port}/r" '
            f'welcomeGreeting="{greeting}" preemptible="true" partialPrompts="true"/>'
            "</Connect></Response>"
        )
        greeting_frames = 25 * len(greeting.split())
        clock = asyncio.ensure_future(leg.clock())
        session = asyncio.ensure_future(run_relay(runner, verb))
        try:
            # The preemptible greeting is cut by the application's first reply.
            await until(lambda: leg.played >= 5)
            await app.steps.put({"type": "text", "token": "Hi.", "last": True})
            await until(lambda: len(said) == 2 and leg.source is None and leg.played > 25)
            assert said == [greeting, "Hi."]
            assert leg.played < greeting_frames
            assert not [m for m in app.got if m["type"] == "interrupt"]  # not the caller

            # A reply that is not preemptible is said whole before the next one.
            base = leg.played
            await app.steps.put(
                {"type": "text", "token": "One two three four.", "last": True, "preemptible": False}
            )
            await until(lambda: len(said) == 3)
            await app.steps.put({"type": "text", "token": "Five.", "last": True})
            await until(lambda: leg.played >= base + 5 * 25)
            assert said[2:] == ["One two three four.", "Five."]

            # A preemptible reply gives way to the next one the same way.
            await until(lambda: len(said) == 4 and leg.source is None)
            answer = "A long answer, " + "and more " * 10 + "to say."
            await app.steps.put({"type": "text", "token": answer, "last": True})
            await until(lambda: len(said) == 5 and leg.source is not None)
            base = leg.played
            await app.steps.put({"type": "text", "token": "Short.", "last": True})
            await until(lambda: len(said) == 6 and leg.source is None and leg.played >= base + 25)
            assert said[4:] == [answer, "Short."]
            assert leg.played < base + 25 * len(answer.split())

            # partialPrompts: the words so far (last=false), then the utterance.
            ears = listeners[-1]
            assert ears.on_partial is not None
            ears.on_partial(SimpleNamespace(text="I lost", confidence=0.0))
            ears.on_partial(SimpleNamespace(text="I lost my", confidence=0.0))
            ears.result.set_result(SimpleNamespace(text="I lost my card", confidence=0.7))
            await until(lambda: len([m for m in app.got if m["type"] == "prompt"]) == 3)
            prompts = [m for m in app.got if m["type"] == "prompt"]
            assert [(p["voicePrompt"], p["last"]) for p in prompts] == [
                ("I lost", False),
                ("I lost my", False),
                ("I lost my card", True),
            ]
            await app.steps.put({"type": "end"})
            outcome = await asyncio.wait_for(session, 30)
        finally:
            clock.cancel()
            await app.steps.put(None)
    assert outcome.status == "ended"


async def test_without_partial_prompts_the_recognizer_is_asked_for_none():
    app = Application()
    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        runner, _leg, listeners, _said, verb = setting(
            f'<Response><Connect><ConversationRelay url="ws://127.0.0.1:{port}/r"/>'
            "</Connect></Response>"
        )
        session = asyncio.ensure_future(run_relay(runner, verb))
        try:
            await until(lambda: listeners)
            assert listeners[0].on_partial is None
            await app.steps.put({"type": "end"})
            assert (await asyncio.wait_for(session, 30)).status == "ended"
        finally:
            await app.steps.put(None)
