"""<Start><Transcription>: utterances of each track to the status callback
(control_api/voice/live_transcription.py), with a fake recognizer."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from control_api.twiml.parser import parse_voice_twiml
from control_api.voice.live_transcription import CallTranscriptions
from media.leg import Frame


class FakeListener:
    def __init__(self, on_partial=None) -> None:
        self.result = asyncio.get_running_loop().create_future()
        self.fed = 0
        self.on_partial = on_partial

    def feed(self, samples) -> None:
        self.fed += samples.size

    def cancel(self) -> None:
        if not self.result.done():
            self.result.cancel()


class FakeOutbox:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.changed = asyncio.Event()
        self.gate: asyncio.Event | None = None  # set: callbacks wait until it opens

    async def enqueue(self, **item) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(dict(item["params"]))
        self.changed.set()


class Runner(SimpleNamespace):
    """A runner the transcriptions can hold weakly, as they hold the real one."""


def setting(recognizer: bool = True):
    listeners: dict[str, list[FakeListener]] = {}

    def listen(language, hints, on_speech, on_partial=None):
        listener = FakeListener(on_partial)
        listeners.setdefault(language, []).append(listener)
        return listener

    outbox = FakeOutbox()
    leg = SimpleNamespace(tap=None, tap_paced=False, codec="PCMU")
    call = SimpleNamespace(sid="CA" + "1" * 32, leg=leg, ended=asyncio.Event())
    runner = Runner(
        call=call,
        account_sid="AC" + "2" * 32,
        services=SimpleNamespace(
            context=SimpleNamespace(outbox=outbox, speech_listener=listen if recognizer else None)
        ),
    )
    return runner, leg, outbox, listeners


def spec(attributes: str):
    [verb] = parse_voice_twiml(
        f"<Response><Start><Transcription {attributes}/></Start></Response>"
    ).verbs
    return verb.transcription


async def until(condition, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_each_track_s_utterances_reach_the_callback_until_stopped():
    runner, leg, outbox, listeners = setting()
    transcriptions = CallTranscriptions(runner)
    live = transcriptions.start(
        spec(
            'name="notes" track="both_tracks" statusCallbackUrl="https://app.example/t" '
            'languageCode="en-GB" inboundTrackLabel="customer" outboundTrackLabel="agent"'
        )
    )
    assert live.sid.startswith("GT") and transcriptions.find("notes") is live
    await until(lambda: len(listeners.get("en-GB", [])) == 2 and leg.tap is not None)
    inbound, outbound = listeners["en-GB"]
    leg.tap(0, Frame("PCMU", b"\xff" * 160))
    leg.tap(1, Frame("PCMU", b"\xff" * 160))
    leg.tap(1, Frame("PCMU", b"\xff" * 160))
    assert (inbound.fed, outbound.fed) == (160, 320)
    inbound.result.set_result(SimpleNamespace(text="my card is lost", confidence=0.72))
    await until(lambda: len(outbox.sent) == 2)
    outbound.result.set_result(SimpleNamespace(text="let me help", confidence=0.9))
    await until(lambda: len(outbox.sent) == 3)
    with pytest.raises(ValueError):
        transcriptions.start(spec('name="notes"'))
    await transcriptions.stop(live)
    started, heard, replied, stopped = outbox.sent
    assert [e["TranscriptionEvent"] for e in outbox.sent] == [
        "transcription-started",
        "transcription-content",
        "transcription-content",
        "transcription-stopped",
    ]
    assert [e["SequenceId"] for e in outbox.sent] == ["1", "2", "3", "4"]
    assert started["TranscriptionSid"] == live.sid and started["TranscriptionName"] == "notes"
    assert (heard["Track"], heard["TrackLabel"], heard["Final"]) == (
        "inbound_track",
        "customer",
        "true",
    )
    assert json.loads(heard["TranscriptionData"]) == {
        "transcript": "my card is lost",
        "confidence": 0.72,
    }
    assert (replied["Track"], replied["TrackLabel"]) == ("outbound_track", "agent")
    assert stopped["LanguageCode"] == "en-GB" and live.status == "stopped"
    assert leg.tap is None and transcriptions.find("notes") is None


async def test_no_recognizer_is_an_error_event_and_the_call_ending_stops_it():
    runner, _, outbox, _ = setting(recognizer=False)
    CallTranscriptions(runner).start(spec('statusCallbackUrl="https://app.example/t"'))
    await until(lambda: len(outbox.sent) == 3)
    assert [e["TranscriptionEvent"] for e in outbox.sent] == [
        "transcription-started",
        "transcription-error",
        "transcription-stopped",
    ]
    assert "no speech recognizer" in outbox.sent[1]["TranscriptionError"]
    runner, leg, outbox, _ = setting()
    CallTranscriptions(runner).start(spec('statusCallbackUrl="https://app.example/t"'))
    await until(lambda: leg.tap is not None)
    runner.call.ended.set()
    await until(
        lambda: outbox.sent and outbox.sent[-1]["TranscriptionEvent"] == "transcription-stopped"
    )
    assert leg.tap is None


async def test_partial_results_come_before_the_utterance_with_final_false():
    runner, leg, outbox, listeners = setting()
    transcriptions = CallTranscriptions(runner)
    live = transcriptions.start(
        spec('statusCallbackUrl="https://app.example/t" partialResults="true"')
    )
    await until(lambda: listeners.get("en-US") and leg.tap is not None)
    [listener] = listeners["en-US"]
    assert listener.on_partial is not None
    listener.on_partial(SimpleNamespace(text="my card", confidence=0.0))
    listener.on_partial(SimpleNamespace(text="my card is", confidence=0.0))
    listener.result.set_result(SimpleNamespace(text="my card is lost", confidence=0.8))
    await until(lambda: len(outbox.sent) == 4)
    await transcriptions.stop(live)
    contents = [e for e in outbox.sent if e["TranscriptionEvent"] == "transcription-content"]
    assert [(json.loads(e["TranscriptionData"])["transcript"], e["Final"]) for e in contents] == [
        ("my card", "false"),
        ("my card is", "false"),
        ("my card is lost", "true"),
    ]
    assert [e["SequenceId"] for e in outbox.sent] == ["1", "2", "3", "4", "5"]
    assert outbox.sent[0]["PartialResults"] == "true"


async def test_without_partial_results_the_recognizer_is_asked_for_none():
    runner, leg, _outbox, listeners = setting()
    live = CallTranscriptions(runner).start(spec('statusCallbackUrl="https://app.example/t"'))
    await until(lambda: listeners.get("en-US") and leg.tap is not None)
    assert listeners["en-US"][0].on_partial is None
    live.stop_requested.set()


async def test_a_stop_whose_callbacks_lag_answers_stopped_and_they_follow_in_order(monkeypatch):
    """The stop waits (bounded) for the callbacks owed; past the bound it answers what
    the transcription is: stopped, since it listens no more (its tap is gone), while
    the partial result heard before the stop and then transcription-stopped are still
    on their way, and follow in order."""
    monkeypatch.setattr("control_api.voice.live_transcription.STOP_WAIT_S", 0.05)
    runner, leg, outbox, listeners = setting()
    transcriptions = CallTranscriptions(runner)
    live = transcriptions.start(
        spec('name="notes" statusCallbackUrl="https://app.example/t" partialResults="true"')
    )
    await until(lambda: listeners.get("en-US") and leg.tap is not None and outbox.sent)
    began = live.date_updated
    outbox.gate = asyncio.Event()  # the callbacks lag from now on
    [listener] = listeners["en-US"]
    listener.on_partial(SimpleNamespace(text="my card", confidence=0.0))
    answered = await asyncio.wait_for(transcriptions.stop(live), 5)
    assert answered.status == "stopped" and answered.date_updated > began
    assert leg.tap is None  # it hears nothing more
    assert [e["TranscriptionEvent"] for e in outbox.sent] == ["transcription-started"]
    assert transcriptions.find("notes") is live  # its name is not free while it flushes
    assert (await asyncio.wait_for(transcriptions.stop(live), 5)).status == "stopped"
    outbox.gate.set()
    await until(lambda: len(outbox.sent) == 3)
    assert [(e["TranscriptionEvent"], e["SequenceId"]) for e in outbox.sent] == [
        ("transcription-started", "1"),
        ("transcription-content", "2"),
        ("transcription-stopped", "3"),
    ]
    assert outbox.sent[1]["Final"] == "false"
    await until(lambda: transcriptions.find("notes") is None)
