"""<Gather input="speech"> in the runner, over a fake provider and a fake leg: the
action gets SpeechResult and Confidence, partials go through the outbox, a provider
failure is a notification and the empty-result path, keys still work with dtmf."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from control_api.voice.context import VoiceContext
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from media.g711 import ulaw_encode
from media.leg import Frame
from media.speech import Hypothesis, RecognitionOptions, SpeechError
from tests.speech_audio import spoken_fixture

from .test_runner import FakeApplication, FakeCall, twiml

spoken = pytest.fixture(spoken_fixture, name="spoken")


class FakeLeg:
    codec = "PCMU"

    def __init__(self) -> None:
        self.on_frame = lambda frame: None
        self.on_dtmf = lambda digit: None

    async def speak(self, audio: np.ndarray) -> None:
        """The caller's audio, 20 ms frames, faster than real time."""
        payload = ulaw_encode(audio[: audio.size - audio.size % 160])
        for n, start in enumerate(range(0, len(payload), 160)):
            self.on_frame(Frame("PCMU", payload[start : start + 160], n * 160, 160))
            await asyncio.sleep(0)


class Session:
    def __init__(self, provider: Provider) -> None:
        self.on_partial = None
        self.provider = provider
        self.samples = 0

    def push(self, samples: np.ndarray) -> None:
        self.samples += samples.size
        if self.on_partial is not None and self.samples >= 8000 and not self.provider.partials:
            self.provider.partials += 1
            self.on_partial(Hypothesis("hello", 0.0, final=False, stability=0.5))

    async def finish(self) -> Hypothesis:
        self.provider.heard = self.samples
        if isinstance(self.provider.answer, Exception):
            raise self.provider.answer
        return self.provider.answer

    def cancel(self) -> None:
        pass


class Provider:
    name = "fake"
    sample_rate = 8000

    def __init__(self, answer: Hypothesis | Exception) -> None:
        self.answer = answer
        self.options: RecognitionOptions | None = None
        self.heard = 0
        self.partials = 0

    def open(self, options: RecognitionOptions) -> Session:
        self.options = options
        return Session(self)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def enqueue(self, **request) -> str:
        self.sent.append(request)
        return "d1"


class CallLog:
    def __init__(self) -> None:
        self.problems: list[dict] = []

    def problem(self, **details) -> None:
        self.problems.append(details)


async def gather(pages, provider, caller):
    """Run ``/voice`` on a call whose caller does ``caller(leg)`` once the Gather listens."""
    call, app, leg = FakeCall(), FakeApplication(pages), FakeLeg()
    call.leg = leg
    outbox, call_log = Outbox(), CallLog()

    async def nothing(*args) -> object:
        raise AssertionError("no prompts in these tests")

    context = VoiceContext(
        store=None,
        outbox=outbox,
        webhooks=None,
        synthesize=nothing,
        load_audio=nothing,
        numbers=None,
        tokens=None,
        call_log=call_log,
        speech=provider,
    )
    services = VoiceServices(app.fetch, nothing, nothing, context=context)
    runner = TwimlRunner(call, services, lambda: [("CallSid", "CA1")], account_sid="AC1")
    task = runner.start(Document("http://app/voice"))
    for _ in range(200):  # until the Gather listens
        if leg.on_frame.__name__ == "on_frame":
            break
        await asyncio.sleep(0.01)
    await caller(leg)
    await asyncio.wait_for(task, 30)
    return app, outbox, call_log


def fields_of(app, url):
    return [fields for asked, _, fields in app.asked if asked == url]


async def test_the_words_go_to_the_action_and_partials_to_the_outbox(spoken):
    pages = {
        "http://app/voice": twiml(
            '<Gather input="speech" action="/heard" timeout="3" speechTimeout="1" '
            'hints="hello, agent" language="en-GB" speechModel="phone_call" enhanced="true" '
            'partialResultCallback="/partial"/>'
        ),
        "http://app/heard": twiml("<Hangup/>"),
    }
    provider = Provider(Hypothesis("hello there", 0.8125))
    app, outbox, _ = await gather(
        pages, provider, lambda leg: leg.speak(spoken("hello there", tail_s=1.5))
    )
    [heard] = fields_of(app, "http://app/heard")
    assert heard["SpeechResult"] == "hello there" and heard["Confidence"] == "0.8125"
    assert "Digits" not in heard
    options = provider.options
    assert options is not None
    assert (options.language, options.hints, options.end_silence_s) == (
        "en-GB",
        ("hello", "agent"),
        1.0,
    )
    assert options.model == "phone_call" and options.partials
    [partial] = outbox.sent
    assert partial["url"] == "http://app/partial" and partial["method"] == "POST"
    params = dict(partial["params"])
    assert params["UnstableSpeechResult"] == "hello" and params["SequenceNumber"] == "1"
    assert params["Stability"] == "0.5" and params["CallSid"] == "CA1"


async def test_a_provider_failure_is_a_notification_and_the_empty_result_path(spoken):
    pages = {
        "http://app/voice": twiml(
            '<Gather input="speech" action="/heard" timeout="3" actionOnEmptyResult="true"/>'
        ),
        "http://app/heard": twiml("<Hangup/>"),
    }
    provider = Provider(SpeechError("transcription service http://asr/v1 answered 503"))
    app, _, call_log = await gather(pages, provider, lambda leg: leg.speak(spoken("hello")))
    [heard] = fields_of(app, "http://app/heard")
    assert "SpeechResult" not in heard and heard["Digits"] == ""
    [problem] = call_log.problems
    assert "Speech recognition failed" in problem["text"] and "503" in problem["text"]
    assert problem["call_sid"] == "CA1"


async def test_nobody_speaking_falls_through_to_the_next_verb():
    pages = {
        "http://app/voice": twiml(
            '<Gather input="speech" action="/heard" timeout="1"/><Redirect>/next</Redirect>'
        ),
        "http://app/next": twiml("<Hangup/>"),
    }
    provider = Provider(Hypothesis("never", 1.0))
    app, _, _ = await gather(pages, provider, lambda leg: leg.speak(np.zeros(8000 * 2, np.int16)))
    assert fields_of(app, "http://app/heard") == [] and fields_of(app, "http://app/next")
    assert provider.options is None  # no speech: the provider never opened


async def test_dtmf_speech_takes_keys():
    pages = {
        "http://app/voice": twiml(
            '<Gather input="dtmf speech" action="/heard" timeout="2" numDigits="3"/>'
        ),
        "http://app/heard": twiml("<Hangup/>"),
    }

    async def press(leg) -> None:
        for key in "427":
            leg.on_dtmf(key)
            await asyncio.sleep(0.01)

    app, _, _ = await gather(pages, Provider(Hypothesis("no", 1.0)), press)
    [heard] = fields_of(app, "http://app/heard")
    assert heard["Digits"] == "427" and "SpeechResult" not in heard
