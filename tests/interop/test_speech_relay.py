"""Speech beyond Gather through real calls: ``<Record transcribe>`` and
``<Connect><ConversationRelay>``.

SIPp calls a number and plays words eSpeak NG synthesized (as PCMU, with the
silence a phone sends around them) while an RTP sink takes what the call sends
back. The embedded recognizer must turn the recording into a transcription (its
callback and resource), and the words into a ConversationRelay ``prompt`` for a
bot (a plain ``websockets`` server in the test) whose ``text`` reply the caller
must hear, cut short by an ``interrupt`` when the caller talks over it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
from websockets.asyncio.server import serve

from .audio import ulaw_decode
from .conftest import sipp_failure
from .test_speech_gather import espeak, speech_pcap
from .test_voice_webhooks import rest_client
from .webhook_app import WebhookApp, twiml

REPLY = (
    "I am sorry to hear that. Let me tell you about everything we can do for you today. "
    "First, we can block the card at once, so nobody else can use it. Then we can send a "
    "new card to the address we have on file, which usually takes three to five working "
    "days. If you need money before then, we can arrange an emergency cash transfer to a "
    "branch near you. We can also review your recent payments together, one by one, to "
    "make sure that every one of them was really yours."
)


@pytest.fixture
def client(server):
    return rest_client(server)


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


class Bot:
    """A ConversationRelay application: replies at length to the first prompt, ends the
    session after an interrupt."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stop: asyncio.Event | None = None

    def __enter__(self) -> Bot:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self.stop = asyncio.Event()
        async with serve(self._session, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop.wait()

    async def _session(self, ws) -> None:
        replied = False
        async for data in ws:
            message = json.loads(data)
            message["at"] = time.monotonic()
            self.messages.append(message)
            if message["type"] == "prompt" and not replied:
                replied = True
                for sentence in REPLY.split(". "):
                    await ws.send(json.dumps({"type": "text", "token": sentence + ". "}))
                await ws.send(json.dumps({"type": "text", "token": "", "last": True}))
            elif message["type"] == "interrupt":
                await ws.send(json.dumps({"type": "end", "handoffData": "interrupted"}))

    def of(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]


def speech_frames(packets, since: float = 0.0) -> int:
    """20 ms frames of the call's audio loud enough to be speech."""
    loud = 0
    for packet in packets:
        if packet.arrival < since or packet.payload_type != 0:
            continue
        samples = ulaw_decode(packet.payload).astype(np.float64)
        if samples.size and 20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768 + 1e-12) > -40:
            loud += 1
    return loud


@pytest.mark.usefixtures("raw_sockets")
def test_conversation_relay_prompts_speaks_and_is_interrupted(
    sipp,
    server,
    rtp_sink,
    app,
    client,
    tmp_path,
):
    greeting_done = 0.0
    with Bot() as bot:
        url = f"ws://127.0.0.1:{bot.port}/relay"
        app.routes["/voice"] = lambda r: twiml(
            f'<Connect action="/after"><ConversationRelay url="{url}" welcomeGreeting="Hi."/>'
            "</Connect>"
        )
        app.routes["/after"] = lambda r: twiml("<Hangup/>")
        number = "+15005550110"
        client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
        workdir = tmp_path / "caller"
        workdir.mkdir()
        first, over = espeak("hello"), espeak("wait wait stop please")
        quiet = np.zeros(8000 * 9, np.int16)  # the prompt is recognized, the reply starts
        speech_pcap(workdir / "caller.pcap", np.concatenate([first, quiet, over]), tail_s=4.0)
        result = sipp(
            "uac_speech_pcap.xml",
            service=number.lstrip("+"),
            keys={"sink_port": rtp_sink.port},
            pause_ms=1500,
            calls=1,
            timeout=90,
            cwd=workdir,
        )
        assert result.ok(1), sipp_failure(result, server, "the relay call did not end")
        [after] = app.wait_for("/after", timeout=10)
    [setup] = bot.of("setup")
    assert setup["callSid"] == after.field("CallSid")
    prompts = bot.of("prompt")
    assert prompts and "hello" in prompts[0]["voicePrompt"].lower(), bot.messages
    [interrupted] = bot.of("interrupt")
    assert interrupted["utteranceUntilInterrupt"].startswith("I am sorry"), interrupted
    assert interrupted["durationUntilInterruptMs"] > 500
    # The caller heard the reply: seconds of speech after the prompt, then it stopped.
    greeting_done = prompts[0]["at"]
    assert speech_frames(rtp_sink.packets(), since=greeting_done) >= 50
    assert after.field("SessionStatus") == "ended"
    assert after.field("HandoffData") == "interrupted"


@pytest.mark.usefixtures("raw_sockets")
def test_record_transcribe_posts_the_words_and_keeps_the_transcription(
    sipp,
    server,
    rtp_sink,
    app,
    client,
    tmp_path,
):
    app.routes["/voice"] = lambda r: twiml(
        '<Record transcribe="true" transcribeCallback="/transcribed" timeout="2" '
        'maxLength="20" playBeep="false" action="/recorded"/>'
    )
    app.routes["/recorded"] = lambda r: twiml("<Hangup/>")
    app.routes["/transcribed"] = lambda r: (204, "text/plain", b"")
    number = "+15005550111"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    workdir = tmp_path / "caller"
    workdir.mkdir()
    speech_pcap(workdir / "caller.pcap", espeak("hello"), lead_s=0.5, tail_s=3.0)
    result = sipp(
        "uac_speech_pcap.xml",
        service=number.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        pause_ms=200,
        calls=1,
        timeout=60,
        cwd=workdir,
    )
    assert result.ok(1), sipp_failure(result, server, "the recording call did not end")
    [recorded] = app.wait_for("/recorded", timeout=10)
    [posted] = app.wait_for("/transcribed", timeout=60)
    assert posted.field("TranscriptionStatus") == "completed", posted.form
    assert "hello" in (posted.field("TranscriptionText") or "").lower(), posted.form
    assert posted.field("RecordingSid") == recorded.field("RecordingSid")
    assert posted.headers.get("X-Twilio-Signature")
    transcription = client.transcriptions(posted.field("TranscriptionSid")).fetch()
    assert transcription.status == "completed"
    assert "hello" in transcription.transcription_text.lower()
    assert transcription.recording_sid == recorded.field("RecordingSid")
    listed = client.recordings(recorded.field("RecordingSid")).transcriptions.list()
    assert [t.sid for t in listed] == [transcription.sid]


class PreemptingBot(Bot):
    """Replies at length to the caller's prompt with preemptible text, then, two seconds
    on, sends the next talk cycle ("Goodbye."), which cuts it short; ends three seconds
    later."""

    async def _session(self, ws) -> None:
        async for data in ws:
            message = json.loads(data)
            message["at"] = time.monotonic()
            self.messages.append(message)
            if message["type"] == "prompt" and message["last"]:
                for sentence in REPLY.split(". "):
                    token = {"type": "text", "token": sentence + ". ", "preemptible": True}
                    await ws.send(json.dumps(token))
                await ws.send(json.dumps({"type": "text", "token": "", "last": True}))
                await asyncio.sleep(2.0)
                self.messages.append({"type": "goodbye-sent", "at": time.monotonic()})
                await ws.send(json.dumps({"type": "text", "token": "Goodbye.", "last": True}))
                await asyncio.sleep(3.0)
                self.messages.append({"type": "end-sent", "at": time.monotonic()})
                await ws.send(json.dumps({"type": "end", "handoffData": "done"}))


def speech_frames_between(packets, start: float, end: float) -> int:
    return speech_frames([p for p in packets if p.arrival < end], since=start)


@pytest.mark.usefixtures("raw_sockets")
def test_partial_prompts_come_first_and_a_preemptible_reply_gives_way(
    sipp,
    server,
    rtp_sink,
    app,
    client,
    tmp_path,
):
    with PreemptingBot() as bot:
        url = f"ws://127.0.0.1:{bot.port}/relay"
        app.routes["/voice"] = lambda r: twiml(
            f'<Connect action="/after"><ConversationRelay url="{url}" partialPrompts="true"/>'
            "</Connect>"
        )
        app.routes["/after"] = lambda r: twiml("<Hangup/>")
        number = "+15005550112"
        client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
        workdir = tmp_path / "caller"
        workdir.mkdir()
        words = espeak("hello I would like to check the balance of my account please")
        speech_pcap(workdir / "caller.pcap", words, tail_s=4.0)
        result = sipp(
            "uac_speech_pcap.xml",
            service=number.lstrip("+"),
            keys={"sink_port": rtp_sink.port},
            pause_ms=500,
            calls=1,
            timeout=90,
            cwd=workdir,
        )
        assert result.ok(1), sipp_failure(result, server, "the relay call did not end")
        [after] = app.wait_for("/after", timeout=10)
    assert after.field("SessionStatus") == "ended" and after.field("HandoffData") == "done"
    prompts = bot.of("prompt")
    partial = [p for p in prompts if not p["last"]]
    final = [p for p in prompts if p["last"]]
    assert partial and final, prompts
    assert partial[0]["at"] <= final[0]["at"]
    assert all(p["voicePrompt"] for p in partial)
    assert len(final[0]["voicePrompt"].split()) >= 3, final  # the phrase, decoded
    # The caller heard the reply for two seconds, then only "Goodbye." (about half a
    # second of speech), not the rest of the reply, until the session ended.
    [goodbye] = bot.of("goodbye-sent")
    [end] = bot.of("end-sent")
    packets = rtp_sink.packets()
    reply = speech_frames_between(packets, final[0]["at"], goodbye["at"])
    after_goodbye = speech_frames_between(packets, goodbye["at"], end["at"])
    assert reply >= 50, (reply, after_goodbye)
    assert 10 <= after_goodbye <= 80, (reply, after_goodbye)
