"""`<Connect><Stream>` against a bot whose every message goes through pipecat's
`TwilioFrameSerializer` (issue 5): pipecat's telephony runner parses our
``connected``/``start``, its ``deserialize`` turns each message we send into the
frame it expects (audio, DTMF), and what its ``serialize`` makes of a 440 Hz
`OutputAudioRawFrame`, a transport message (mark) and an `InterruptionFrame`
(clear) is accepted by us: the SIPp caller hears the tone and the clear cuts it.
Reference: /work/shared/reference/twilio-api.md §6."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from twilio.rest import Client
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .audio import dominant_frequency, level_dbfs, ulaw_decode
from .conftest import sipp_failure
from .media_checks import PCMU
from .test_media_streams import BOT_TONE_HZ, TONE_HZ, StreamBot, place_call, stream_twiml
from .test_outbound_calls import heard
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

pytestmark = pytest.mark.callswitch_shared

PIPELINE_IN_RATE = 16000  # pipecat's default pipeline input rate: it resamples our 8 kHz
TTS_RATE = 24000  # a typical TTS output rate: pipecat resamples it to Twilio's 8 kHz
TTS_CHUNK = TTS_RATE // 50  # 20 ms frames, as pipecat's output transport sends them


@pytest.fixture
def app():
    with WebhookApp() as application:
        application.routes["/status"] = lambda r: (204, "text/plain", b"")
        yield application


class _Handshake:
    """The two messages the bot read first, offered to pipecat's
    `parse_telephony_websocket` the way a FastAPI WebSocket offers them."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    async def iter_text(self):
        for text in self._texts:
            yield text


@dataclass
class PipecatSession:
    """What the pipecat side made of one stream."""

    transport_type: str = ""
    call_data: dict = field(default_factory=dict)
    # Every message after the handshake, with what `deserialize` returned for it.
    parsed: list[tuple[dict, Frame | None]] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)  # what `serialize` made, as we sent it
    clear_sent_at: float | None = None


async def open_session(
    bot: StreamBot, ws: ServerConnection, session: PipecatSession
) -> TwilioFrameSerializer:
    """Read ``connected`` and ``start``, let pipecat's runner detect the provider and
    pick the ids out of them, and build the serializer as the runner does (with no
    REST hang-up: this bot never sends an EndFrame)."""
    texts = [await ws.recv(), await ws.recv()]
    for text in texts:
        bot.messages.append((time.monotonic(), json.loads(text)))
    transport_type, call_data = await parse_telephony_websocket(_Handshake(texts))
    session.transport_type = transport_type
    session.call_data = {
        "stream_id": call_data["stream_id"],
        "call_id": call_data["call_id"],
        "body": call_data["body"],
    }
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    # `setup` reads only the pipeline's input rate; the pipeline's clock, task
    # manager and worker are not used by the serializer.
    await serializer.setup(
        FrameProcessorSetup(
            clock=None,
            task_manager=None,
            pipeline_worker=None,
            audio_in_sample_rate=PIPELINE_IN_RATE,
        )
    )
    return serializer


async def receive(
    bot: StreamBot, ws: ServerConnection, serializer: TwilioFrameSerializer, session: PipecatSession
) -> dict:
    """One message from us, recorded and fed to pipecat's `deserialize`."""
    text = await ws.recv()
    message = json.loads(text)
    bot.messages.append((time.monotonic(), message))
    session.parsed.append((message, await serializer.deserialize(text)))
    return message


async def send(ws: ServerConnection, session: PipecatSession, serialized: str | bytes | None):
    if serialized is not None:
        session.sent.append(json.loads(serialized))
        await ws.send(serialized)


def tone_frames(seconds: float) -> list[OutputAudioRawFrame]:
    t = np.arange(int(TTS_RATE * seconds)) / TTS_RATE
    pcm = np.round(0.3 * 32767 * np.sin(2 * np.pi * BOT_TONE_HZ * t)).astype("<i2").tobytes()
    return [
        OutputAudioRawFrame(audio=pcm[i : i + 2 * TTS_CHUNK], sample_rate=TTS_RATE, num_channels=1)
        for i in range(0, len(pcm), 2 * TTS_CHUNK)
    ]


def pipecat_talker(session: PipecatSession):
    """After 0.5 s of the caller, queue 3 s of 440 Hz and a mark through pipecat's
    serializer; interrupt (clear) 1 s later; close the socket 1 s after that."""

    async def behaviour(bot: StreamBot, ws: ServerConnection) -> None:
        serializer = await open_session(bot, ws, session)
        inbound = 0
        clear_at = close_at = None
        while close_at is None or time.monotonic() < close_at:
            wait = 5.0 if close_at is None else close_at - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(bot, ws, serializer, session), wait)
            except TimeoutError:
                break
            if message["event"] == "media":
                inbound += 1
                if inbound == 25:
                    for frame in tone_frames(3.0):
                        await send(ws, session, await serializer.serialize(frame))
                    mark = {"event": "mark", "streamSid": session.call_data["stream_id"]}
                    mark["mark"] = {"name": "end-of-tone"}
                    await send(
                        ws,
                        session,
                        await serializer.serialize(OutputTransportMessageUrgentFrame(mark)),
                    )
                    clear_at = time.monotonic() + 1.0
            if (
                clear_at is not None
                and session.clear_sent_at is None
                and time.monotonic() >= clear_at
            ):
                session.clear_sent_at = time.monotonic()
                await send(ws, session, await serializer.serialize(InterruptionFrame()))
                close_at = time.monotonic() + 1.0
        await ws.close()

    return behaviour


def test_pipecat_bot_parses_our_stream_and_is_heard(server, sipp, rtp_sink, app, tmp_path):
    session = PipecatSession()
    with StreamBot(pipecat_talker(session)) as bot:
        result = place_call(
            server, sipp, rtp_sink, app, tmp_path, "+15005550071", stream_twiml(bot.url, app)
        )
    assert result.ok(1), sipp_failure(result, server, "the call did not end after the stream")

    # pipecat's runner recognised our handshake as Twilio's and found the ids in it.
    start = bot.messages[1][1]
    assert session.transport_type == "twilio"
    assert session.call_data == {
        "stream_id": start["streamSid"],
        "call_id": start["start"]["callSid"],
        "body": {"k": "v"},
    }

    # Every later message went through `deserialize`: audio became pipecat input audio
    # at the pipeline's rate; marks (and a stop, if any) are not frames for pipecat.
    media = [(m, f) for m, f in session.parsed if m["event"] == "media"]
    others = [(m, f) for m, f in session.parsed if m["event"] != "media"]
    assert len(media) >= 50
    assert all(f is None for _, f in others), others
    frames = [f for _, f in media if f is not None]
    assert all(isinstance(f, InputAudioRawFrame) for f in frames)
    assert all(f.sample_rate == PIPELINE_IN_RATE and f.num_channels == 1 for f in frames)
    # The resampler holds audio back (a message may give no frame yet), never loses it.
    pcm = np.frombuffer(b"".join(f.audio for f in frames), dtype="<i2")
    sent_samples = sum(len(base64.b64decode(m["media"]["payload"])) for m, _ in media)
    assert 2 * sent_samples - 0.3 * PIPELINE_IN_RATE <= len(pcm) <= 2 * sent_samples
    middle = pcm[PIPELINE_IN_RATE // 2 : PIPELINE_IN_RATE // 2 + PIPELINE_IN_RATE]
    assert abs(dominant_frequency(middle, PIPELINE_IN_RATE) - TONE_HZ) < 10

    # What pipecat's `serialize` sent us: 8 kHz mu-law of the 440 Hz, a mark, a clear.
    stream_sid = start["streamSid"]
    kinds = [m["event"] for m in session.sent]
    assert kinds[-2:] == ["mark", "clear"] and set(kinds[:-2]) == {"media"}
    assert all(m["streamSid"] == stream_sid for m in session.sent)
    out = ulaw_decode(b"".join(base64.b64decode(m["media"]["payload"]) for m in session.sent[:-2]))
    assert 2.5 * 8000 <= len(out) <= 3 * 8000
    assert abs(dominant_frequency(out[4000:12000]) - BOT_TONE_HZ) < 10

    # We accepted all of it: the caller heard the tone, the clear cut it after ~1 s
    # of the 3 s, and the pending mark came back promptly on the clear.
    assert heard(rtp_sink, BOT_TONE_HZ), "the caller did not hear pipecat's audio"
    played = [p.payload for p in rtp_sink.packets() if p.payload_type == PCMU]
    loud = [f for f in played if level_dbfs(ulaw_decode(f)) > -30]
    assert 0.7 <= len(loud) * 0.02 <= 1.5, len(loud) * 0.02
    came_back = bot.mark_back("end-of-tone")
    assert came_back is not None, "the pending mark was not echoed on clear"
    assert session.clear_sent_at is not None
    assert came_back - session.clear_sent_at < 0.5


def dtmf_listener(session: PipecatSession):
    """Deserialize everything until the DTMF event, then close the socket."""

    async def behaviour(bot: StreamBot, ws: ServerConnection) -> None:
        serializer = await open_session(bot, ws, session)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(
                    receive(bot, ws, serializer, session), deadline - time.monotonic()
                )
            except (TimeoutError, ConnectionClosed):
                break
            if message["event"] == "dtmf":
                await asyncio.sleep(0.5)  # a repeated event for the same digit would show
                break
        await ws.close()

    return behaviour


@pytest.mark.usefixtures("raw_sockets")
def test_rfc4733_digit_reaches_the_bot_as_a_dtmf_event(server, sipp, rtp_sink, app, tmp_path):
    number = "+15005550072"
    session = PipecatSession()
    with StreamBot(dtmf_listener(session)) as bot:
        app.routes["/voice"] = lambda r: twiml(stream_twiml(bot.url, app))
        sid, token = credentials(server)
        client = Client(
            sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}")
        )
        client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
        result = sipp(
            "uac_dtmf_server_bye.xml",
            service=number.lstrip("+"),
            keys={"sink_port": rtp_sink.port},
            pause_ms=1500,
            calls=1,
            timeout=15,
        )
    assert result.ok(1), sipp_failure(result, server, "the call did not end after the digit")
    dtmf = [(m, f) for m, f in session.parsed if m["event"] == "dtmf"]
    assert len(dtmf) == 1, [m for m, _ in dtmf]
    [(message, frame)] = dtmf
    sequence = [int(m["sequenceNumber"]) for _, m in bot.messages[1:]]
    assert sequence == list(range(1, len(sequence) + 1))
    assert message == {
        "event": "dtmf",
        "streamSid": session.call_data["stream_id"],
        "sequenceNumber": message["sequenceNumber"],
        "dtmf": {"track": "inbound_track", "digit": "1"},
    }
    assert isinstance(frame, InputDTMFFrame) and frame.button is KeypadEntry.ONE
