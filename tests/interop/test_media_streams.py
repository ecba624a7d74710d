"""`<Connect><Stream>` against a Media Streams bot written with the plain
`websockets` library, called by SIPp streaming 1 kHz: what the bot receives
(reference §6), what the caller hears back, marks, clear, and a URL that refuses."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from twilio.rest import Client
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode, ulaw_encode
from .conftest import sipp_failure
from .harness import free_port
from .media_checks import PCMU
from .test_outbound_calls import heard, tone_dir
from .test_voice_webhooks import LocalHttpClient, credentials, wav_bytes
from .webhook_app import WebhookApp, twiml

pytestmark = pytest.mark.callswitch_shared

TONE_HZ = 1000.0
BOT_TONE_HZ = 440.0
FRAME = 160

Behaviour = Callable[["StreamBot", ServerConnection], Awaitable[None]]


class StreamBot:
    """A Media Streams application on 127.0.0.1: a websockets server in a thread
    of its own that records every message (with its arrival time) and runs
    ``behaviour`` on each connection."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.messages: list[tuple[float, dict]] = []
        self.marks_sent: dict[str, float] = {}
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await asyncio.wait_for(self._stop, 60)

    async def _handle(self, ws: ServerConnection) -> None:
        await asyncio.wait_for(self.behaviour(self, ws), 30)

    async def next_message(self, ws: ServerConnection) -> dict:
        message = json.loads(await ws.recv())
        self.messages.append((time.monotonic(), message))
        return message

    async def send_mark(self, ws: ServerConnection, name: str) -> None:
        self.marks_sent[name] = time.monotonic()
        await ws.send(json.dumps({"event": "mark", "mark": {"name": name}}))

    def events(self, name: str) -> list[dict]:
        return [m for _, m in self.messages if m.get("event") == name]

    def mark_back(self, name: str) -> float | None:
        return next(
            (
                at
                for at, m in self.messages
                if m.get("event") == "mark" and m["mark"]["name"] == name
            ),
            None,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def __enter__(self) -> StreamBot:
        self._thread.start()
        assert self._ready.wait(5), "the bot did not start"
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(
                lambda: self._stop.done() or self._stop.set_result(None)
            )
        self._thread.join(5)


def media_message(stream_sid: str, payload: bytes) -> str:
    return json.dumps(
        {
            "event": "media",
            "streamSid": stream_sid,
            "media": {"payload": base64.b64encode(payload).decode()},
        }
    )


@pytest.fixture
def app():
    with WebhookApp() as application:
        application.routes["/status"] = lambda r: (204, "text/plain", b"")
        yield application


def place_call(server, sipp, rtp_sink, app, tmp_path, number: str, body: str):
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    app.routes["/voice"] = lambda r: twiml(body)
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    return sipp(
        "uac_tone_wait_bye.xml",
        service=number.lstrip("+"),
        keys={"sink_port": rtp_sink.port},
        cwd=tone_dir(tmp_path / "tone", TONE_HZ),
        calls=1,
        timeout=20,
    )


def stream_twiml(url: str, app: WebhookApp, after: str = "<Hangup/>", connect: str = "") -> str:
    return (
        f'<Connect{connect}><Stream url="{url}" name="bot" statusCallback="{app.url("/status")}">'
        f'<Parameter name="k" value="v"/></Stream></Connect>{after}'
    )


async def echo(bot: StreamBot, ws: ServerConnection) -> None:
    """Echo the caller back; after 1 s, queue 1 s of 440 Hz and a mark behind it;
    close the socket 0.5 s after the mark came back."""
    stream_sid = ""
    inbound = 0
    burst = ulaw_encode(sine(BOT_TONE_HZ, 1.0, amplitude=0.3))
    closing_at = None
    while closing_at is None or time.monotonic() < closing_at:
        message = await bot.next_message(ws)
        if message["event"] == "start":
            stream_sid = message["streamSid"]
        elif message["event"] == "media":
            inbound += 1
            await ws.send(media_message(stream_sid, base64.b64decode(message["media"]["payload"])))
            if inbound == 50:
                await ws.send(media_message(stream_sid, burst))
                await bot.send_mark(ws, "after-burst")
        elif message["event"] == "mark" and closing_at is None:
            closing_at = time.monotonic() + 0.5
    await ws.close()


def test_connect_stream_echo_bot(server, sipp, rtp_sink, app, tmp_path):
    with StreamBot(echo) as bot:
        result = place_call(
            server, sipp, rtp_sink, app, tmp_path, "+15005550061", stream_twiml(bot.url, app)
        )
    assert result.ok(1), sipp_failure(result, server, "the call did not end after the stream")
    connected, start = bot.messages[0][1], bot.messages[1][1]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    stream_sid = start["streamSid"]
    assert stream_sid.startswith("MZ") and len(stream_sid) == 34
    body = start["start"]
    assert body["accountSid"] == credentials(server)[0]
    assert body["callSid"].startswith("CA") and body["streamSid"] == stream_sid
    assert body["tracks"] == ["inbound"] and body["customParameters"] == {"k": "v"}
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}

    media = bot.events("media")
    assert len(media) >= 100
    assert [m["media"]["chunk"] for m in media[:5]] == ["1", "2", "3", "4", "5"]
    assert [m["sequenceNumber"] for m in media[:3]] == ["2", "3", "4"]
    assert all(m["media"]["track"] == "inbound" and m["streamSid"] == stream_sid for m in media)
    audio = ulaw_decode(b"".join(base64.b64decode(m["media"]["payload"]) for m in media))
    assert abs(dominant_frequency(audio[4000:12000]) - TONE_HZ) < 10
    assert -25 < level_dbfs(audio[4000:12000]) < -3

    # The 1 s burst was queued behind the echo: its mark comes back once it has played.
    came_back = bot.mark_back("after-burst")
    assert came_back is not None, "the mark did not come back"
    assert 0.9 <= came_back - bot.marks_sent["after-burst"] <= 2.5

    assert heard(rtp_sink, TONE_HZ), "the caller did not hear its own tone echoed back"
    assert heard(rtp_sink, BOT_TONE_HZ), "the caller did not hear the bot's burst"

    statuses = app.wait_for("/status", count=2)
    assert [s.field("StreamEvent") for s in statuses] == ["stream-started", "stream-stopped"]
    assert statuses[0].field("StreamSid") == stream_sid
    assert statuses[0].field("StreamName") == "bot"
    assert statuses[0].field("CallSid") == body["callSid"]


async def tone_then_clear(bot: StreamBot, ws: ServerConnection) -> None:
    """5 s of 440 Hz and a mark behind it; clear after 0.5 s; close 1.5 s later."""
    await bot.next_message(ws)  # connected
    start = await bot.next_message(ws)
    stream_sid = start["streamSid"]
    tone = ulaw_encode(sine(BOT_TONE_HZ, 5.0, amplitude=0.3))
    for offset in range(0, len(tone), 8000):  # 1 s per message
        await ws.send(media_message(stream_sid, tone[offset : offset + 8000]))
    await bot.send_mark(ws, "end-of-tone")
    reader = asyncio.ensure_future(_record_all(bot, ws))
    await asyncio.sleep(0.5)
    bot.marks_sent["clear"] = time.monotonic()
    await ws.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
    await asyncio.sleep(1.5)
    reader.cancel()
    await ws.close()


async def _record_all(bot: StreamBot, ws: ServerConnection) -> None:
    while True:
        await bot.next_message(ws)


def test_clear_drops_queued_audio_and_echoes_the_mark(server, sipp, rtp_sink, app, tmp_path):
    with StreamBot(tone_then_clear) as bot:
        result = place_call(
            server, sipp, rtp_sink, app, tmp_path, "+15005550062", stream_twiml(bot.url, app)
        )
    assert result.ok(1), sipp_failure(result, server, "the call did not end after the stream")
    came_back = bot.mark_back("end-of-tone")
    assert came_back is not None, "the pending mark was not echoed on clear"
    assert came_back - bot.marks_sent["clear"] < 0.5  # promptly, not after the 4.5 s left
    frames = [p.payload for p in rtp_sink.packets() if p.payload_type == PCMU]
    loud = [f for f in frames if level_dbfs(ulaw_decode(f)) > -30]
    tone_seconds = len(loud) * 0.02
    assert 0.3 <= tone_seconds <= 1.2, tone_seconds  # ~0.5 s played, not 5 s
    played = ulaw_decode(b"".join(loud))
    assert abs(dominant_frequency(played) - BOT_TONE_HZ) < 10


@pytest.mark.parametrize(
    ("number", "connect", "after"),
    [
        ("+15005550063", "", "<Redirect>/after</Redirect>"),  # the next verb
        ("+15005550064", ' action="/after"', "<Say>not this</Say>"),  # or <Connect action>
    ],
)
def test_a_refused_stream_url_goes_on_with_the_twiml(
    server, sipp, rtp_sink, app, tmp_path, number, connect, after
):
    app.routes["/after"] = lambda r: twiml("<Hangup/>")
    url = f"ws://127.0.0.1:{free_port()}/"
    started = time.monotonic()
    result = place_call(
        server,
        sipp,
        rtp_sink,
        app,
        tmp_path,
        number,
        stream_twiml(url, app, after=after, connect=connect),
    )
    assert result.ok(1), sipp_failure(result, server, "the call did not go on after the stream")
    assert app.wait_for("/after"), "TwiML did not continue after <Connect>"
    assert time.monotonic() - started < 8
    [status] = app.wait_for("/status")
    assert status.field("StreamEvent") == "stream-error"
    assert status.field("StreamSid").startswith("MZ")
    assert "127.0.0.1" in status.field("StreamError")


# -- <Start><Stream>: one-way forks ------------------------------------------------------------


async def listen(bot: StreamBot, ws: ServerConnection) -> None:
    """Record everything until the stream's stop (or the socket closes); send a
    media message back, which a one-way fork must ignore."""
    sent_back = False
    while True:
        try:
            message = await bot.next_message(ws)
        except ConnectionClosed:
            return
        if message["event"] == "media" and not sent_back:
            sent_back = True
            await ws.send(media_message(message["streamSid"], b"\x00" * 160))
        if message["event"] == "stop":
            return


def track_audio(media: list[dict], track: str) -> tuple[list[int], np.ndarray]:
    mine = [m for m in media if m["media"]["track"] == track]
    stamps = [int(m["media"]["timestamp"]) for m in mine]
    chunks = [int(m["media"]["chunk"]) for m in mine]
    assert chunks == list(range(1, len(mine) + 1)), f"{track} chunks are not 1, 2, 3…"
    audio = ulaw_decode(b"".join(base64.b64decode(m["media"]["payload"]) for m in mine))
    return stamps, audio


def test_start_stream_both_tracks_forks_what_each_side_hears(server, sipp, rtp_sink, app, tmp_path):
    tone = wav_bytes(sine(BOT_TONE_HZ, 2.0, amplitude=0.4))
    app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone)
    with StreamBot(listen) as bot:
        body = (
            f'<Start><Stream url="{bot.url}" name="fork" track="both_tracks" '
            f'statusCallback="{app.url("/status")}"><Parameter name="k" value="v"/>'
            f"</Stream></Start><Play>{app.url('/tone.wav')}</Play><Hangup/>"
        )
        result = place_call(server, sipp, rtp_sink, app, tmp_path, "+15005550065", body)
        deadline = time.monotonic() + 5
        while not bot.events("stop") and time.monotonic() < deadline:
            time.sleep(0.05)
    assert result.ok(1), sipp_failure(result, server, "the call did not end after <Play>")
    assert bot.messages[0][1]["event"] == "connected"
    start = bot.messages[1][1]
    assert start["start"]["tracks"] == ["inbound", "outbound"]
    assert start["start"]["customParameters"] == {"k": "v"}
    assert bot.events("stop"), "no stop message when the call ended"
    media = bot.events("media")
    sequence = [int(m["sequenceNumber"]) for _, m in bot.messages[1:]]
    assert sequence == list(range(1, len(sequence) + 1))

    in_stamps, inbound = track_audio(media, "inbound")
    out_stamps, outbound = track_audio(media, "outbound")
    assert len(inbound) >= 8000 and len(outbound) >= 8000  # a second or more of each
    assert all(b > a for a, b in itertools.pairwise(in_stamps))
    assert all(b > a for a, b in itertools.pairwise(out_stamps))
    assert abs(dominant_frequency(inbound[2000:10000]) - TONE_HZ) < 10
    loud = outbound[np.abs(outbound.astype(np.int32)) > 1000]
    assert len(loud) > 4000, "the fork's outbound track does not hold the <Play>"
    assert abs(dominant_frequency(outbound[-12000:-2000]) - BOT_TONE_HZ) < 10
    # The caller heard the <Play>, not the bot's ignored media.
    assert heard(rtp_sink, BOT_TONE_HZ)
    statuses = app.wait_for("/status", count=2)
    assert [s.field("StreamEvent") for s in statuses] == ["stream-started", "stream-stopped"]
    assert statuses[0].field("StreamName") == "fork"


# A leading <Pause> rings (Twilio answers at the first other verb): the second one
# holds the answered call while the test drives the Streams resource.
PAUSE_TWIML = '<Pause length="1"/><Pause length="4"/><Hangup/>'


def test_streams_rest_resource_starts_and_stops_a_fork(server, sipp, rtp_sink, app, tmp_path):
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    outcome: dict = {}

    def drive(bot_url: str) -> None:
        try:
            [voice] = app.wait_for("/voice")
            call_sid = voice.field("CallSid")
            time.sleep(1.5)  # past the ringing <Pause>
            created = client.calls(call_sid).streams.create(
                url=bot_url, name="rest", status_callback=app.url("/status")
            )
            outcome["created"] = created
            time.sleep(1.5)
            outcome["stopped"] = client.calls(call_sid).streams("rest").update(status="stopped")
        except Exception as exc:  # reported by the test below
            outcome["error"] = exc

    with StreamBot(listen) as bot:
        driver = threading.Thread(target=drive, args=(bot.url,), daemon=True)
        driver.start()
        result = place_call(server, sipp, rtp_sink, app, tmp_path, "+15005550066", PAUSE_TWIML)
        driver.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert result.ok(1), sipp_failure(result, server, "the call did not end after <Pause>")
    created, stopped = outcome["created"], outcome["stopped"]
    assert created.sid.startswith("MZ") and created.status == "in-progress"
    assert created.name == "rest"
    assert stopped.sid == created.sid and stopped.status == "stopped"
    assert bot.events("stop"), "the stop by name did not send stop"
    start = bot.events("start")[0]
    assert start["streamSid"] == created.sid and start["start"]["tracks"] == ["inbound"]
    media = bot.events("media")
    assert 50 <= len(media) <= 100  # about 1.5 s of the caller
    _, inbound = track_audio(media, "inbound")
    assert abs(dominant_frequency(inbound[2000:8000]) - TONE_HZ) < 10
    statuses = app.wait_for("/status", count=2)
    assert [s.field("StreamEvent") for s in statuses] == ["stream-started", "stream-stopped"]
    assert all(s.field("StreamSid") == created.sid for s in statuses)
    assert statuses[1].field("StreamName") == "rest"
