"""The Media Streams WebSocket client on loopback: refusals, back-pressure, hang-up."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time

import pytest
from websockets.asyncio.server import serve
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from media.leg import Frame, Leg
from media.stream_client import MediaStreamClient, StreamConnectError
from media.streams import MediaStream


class FakeLeg(Leg):
    codec = "PCMU"

    def __init__(self) -> None:
        super().__init__()
        self.source = None


def protocol() -> MediaStream:
    return MediaStream("AC" + "1" * 32, "CA" + "2" * 32, "MZ" + "3" * 32, {"a": "b"})


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_refused_url_raises_stream_connect_error_quickly():
    client = MediaStreamClient(FakeLeg(), f"ws://127.0.0.1:{unused_port()}/", protocol())
    started = time.monotonic()
    with pytest.raises(StreamConnectError):
        await client.connect()
    assert time.monotonic() - started < 2


async def test_a_server_that_never_answers_the_handshake_times_out():
    async def silent(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = MediaStreamClient(
        FakeLeg(), f"ws://127.0.0.1:{port}/", protocol(), connect_timeout=0.3
    )
    async with server:
        started = time.monotonic()
        with pytest.raises(StreamConnectError):
            await client.connect()
        assert time.monotonic() - started < 2


class StalledApp(asyncio.Protocol):
    """A Media Streams application that completes the handshake, then stops reading
    until told to (websockets' sans-I/O server protocol on a raw transport)."""

    def __init__(self) -> None:
        self.ws = ServerProtocol()
        self.transport: asyncio.Transport | None = None
        self.messages: list[dict] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
            elif isinstance(event, WsFrame) and event.opcode is Opcode.TEXT:
                self.messages.append(json.loads(event.data))
                if self.messages[-1]["event"] == "start":
                    self.transport.pause_reading()  # from here on, the app is stuck
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)


async def test_media_the_app_cannot_take_is_dropped_not_waited_for():
    loop = asyncio.get_running_loop()
    app = StalledApp()
    server = await loop.create_server(lambda: app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        leg = FakeLeg()
        client = MediaStreamClient(
            leg, f"ws://127.0.0.1:{port}/", protocol(), send_buffer=16 * 1024
        )
        await client.connect()
        ended = asyncio.Event()
        running = asyncio.ensure_future(client.run(ended))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        burst = 5000  # about 1.4 MB of media messages: more than the socket buffers hold
        for i in range(burst):
            leg.on_frame(Frame("PCMU", bytes([i % 256]) * 160, timestamp=160 * i))
        assert time.monotonic() - started < 1.0  # never waits for the application
        assert client.dropped > 0
        media_sent = client.sent - 2  # connected and start went first
        assert media_sent + client.dropped == burst
        leg.on_dtmf("7")  # control messages are never dropped
        app.transport.resume_reading()  # the app catches up
        for _ in range(200):
            if len(app.messages) >= 2 + media_sent + 1:
                break
            await asyncio.sleep(0.01)
        ended.set()
        assert await asyncio.wait_for(running, 5) is None
    events = [m["event"] for m in app.messages]
    assert events[:2] == ["connected", "start"]
    media = [m for m in app.messages if m["event"] == "media"]
    assert len(media) == media_sent  # what was not dropped arrived, in order
    assert base64.b64decode(media[-1]["media"]["payload"]) == bytes([(media_sent - 1) % 256]) * 160
    assert [m["media"]["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert events[2 + media_sent] == "dtmf"
    assert events[-1] == "stop"
    assert leg.source is None  # the leg's own callbacks are back


async def test_app_audio_plays_one_frame_per_pull_and_marks_come_back():
    got: list[dict] = []
    both_back = asyncio.Event()

    async def app(ws):
        await ws.send(
            json.dumps(
                {"event": "media", "media": {"payload": base64.b64encode(b"\x11" * 320).decode()}}
            )
        )
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "m"}}))
        async for message in ws:
            got.append(json.loads(message))
            if got[-1]["event"] == "mark":
                both_back.set()
                await ws.close()

    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        leg = FakeLeg()
        client = MediaStreamClient(leg, f"ws://127.0.0.1:{port}/", protocol())
        await client.connect()
        running = asyncio.ensure_future(client.run(asyncio.Event()))
        await asyncio.sleep(0.01)  # run() takes the leg's source
        for _ in range(100):
            if client.playback.queued_frames == 2:
                break
            await asyncio.sleep(0.01)
        assert leg.source() == b"\x11" * 160
        assert leg.source() == b"\x11" * 160
        assert leg.source() is None
        await asyncio.wait_for(both_back.wait(), 2)
        assert await asyncio.wait_for(running, 5) is None  # the app closed: a normal end
    assert got[-1]["mark"] == {"name": "m"}


async def test_a_connection_broken_mid_call_ends_the_stream_with_an_error():
    async def breaks(ws):
        await ws.recv()
        await ws.recv()
        ws.transport.abort()  # no close frame: the connection just dies

    async with serve(breaks, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        leg = FakeLeg()
        saved = leg.on_frame
        client = MediaStreamClient(leg, f"ws://127.0.0.1:{port}/", protocol())
        await client.connect()
        error = await asyncio.wait_for(client.run(asyncio.Event()), 5)
    assert error is not None and "connection lost" in error
    assert leg.on_frame is saved


def media_message(payload: bytes) -> str:
    return json.dumps({"event": "media", "media": {"payload": base64.b64encode(payload).decode()}})


class CountingClient(MediaStreamClient):
    """Counts the messages it reads, and the most frames ever queued."""

    handled = 0
    most_queued = 0

    def _handle(self, message: bytes) -> None:
        self.handled += 1
        super()._handle(message)
        self.most_queued = max(self.most_queued, self.playback.queued_frames)


async def test_a_full_playout_queue_stops_reading_and_clear_still_comes_through():
    """An application far ahead of playout is read at playout's pace (TCP holds it back);
    the mark and clear behind its audio arrive in order once their turn comes."""
    marks: list[str] = []
    done = asyncio.Event()

    async def app(ws):
        for _ in range(300):
            await ws.send(media_message(b"\x22" * 160))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "m"}}))
        await ws.send(json.dumps({"event": "clear"}))
        async for message in ws:
            event = json.loads(message)
            if event["event"] == "mark":
                marks.append(event["mark"]["name"])
                done.set()

    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        leg = FakeLeg()
        client = CountingClient(leg, f"ws://127.0.0.1:{port}/", protocol())
        client.playback.max_frames = 100
        await client.connect()
        until = asyncio.Event()
        running = asyncio.ensure_future(client.run(until))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60  # a hung test's bound, not a timing claim
        while not client.held_back and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert client.held_back == 1 and client.playback.queued_frames == 100
        assert client.handled <= 101  # nothing read past the bound while held back
        pulled = 0
        while not done.is_set() and pulled < 1000 and loop.time() < deadline:
            if leg.source() is not None:
                pulled += 1
            await asyncio.sleep(0.001)
        await asyncio.wait_for(done.wait(), 10)
        assert marks == ["m"]
        assert pulled <= 300 and client.most_queued <= 100
        assert client.media_dropped == 0  # held back, not dropped
        until.set()
        assert await asyncio.wait_for(running, 5) is None


class EagerApp(asyncio.Protocol):
    """An application whose handshake response and first 300 media messages leave in
    one write, so they reach the client in one read."""

    def __init__(self) -> None:
        self.ws = ServerProtocol()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
                for _ in range(300):
                    self.ws.send_text(media_message(b"\x22" * 160).encode())
        self.transport.write(b"".join(self.ws.data_to_send()))


async def test_audio_sent_with_the_handshake_is_held_back_not_dropped():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EagerApp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        leg = FakeLeg()
        client = CountingClient(leg, f"ws://127.0.0.1:{port}/", protocol())
        client.playback.max_frames = 100
        await client.connect()
        assert client.held_back == 1 and client.handled == 100
        until = asyncio.Event()
        running = asyncio.ensure_future(client.run(until))
        await asyncio.sleep(0)  # run() puts the playout source in place
        pulled = 0
        for _ in range(2000):  # one pull per loop turn: reading resumes as room frees up
            pulled += leg.source() is not None
            if pulled == 300:
                break
            await asyncio.sleep(0)
        until.set()
        await asyncio.wait_for(running, 5)
        assert pulled == 300 and client.handled == 300
        assert client.media_dropped == 0 and client.most_queued <= 100


async def test_audio_beyond_the_bound_in_one_message_is_dropped_and_counted():
    async def app(ws):
        await ws.send(media_message(b"\x33" * 160 * 150))
        await asyncio.sleep(5)

    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = MediaStreamClient(FakeLeg(), f"ws://127.0.0.1:{port}/", protocol())
        client.playback.max_frames = 100
        await client.connect()
        until = asyncio.Event()
        running = asyncio.ensure_future(client.run(until))
        for _ in range(200):
            if client.media_dropped:
                break
            await asyncio.sleep(0.01)
        assert client.media_dropped == 50 and client.playback.queued_frames == 100
        until.set()
        await asyncio.wait_for(running, 5)


async def test_a_message_flood_is_read_within_the_budget():
    """A flood of messages that never fill the queue (clear, garbage) is still read at
    a bounded rate: reading pauses for the rest of each window past the budget."""
    from media.stream_client import MESSAGE_WINDOW_S, MESSAGES_PER_WINDOW

    async def app(ws):
        clear = json.dumps({"event": "clear"})
        with contextlib.suppress(Exception):
            for _ in range(20_000):
                await ws.send(clear)

    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = CountingClient(FakeLeg(), f"ws://127.0.0.1:{port}/", protocol())
        await client.connect()
        until = asyncio.Event()
        running = asyncio.ensure_future(client.run(until))
        started = time.monotonic()
        await asyncio.sleep(0.5)
        handled, elapsed = client.handled, time.monotonic() - started
        windows = elapsed / MESSAGE_WINDOW_S + 2
        assert client.throttled >= 2
        assert handled <= windows * (MESSAGES_PER_WINDOW + 1)
        until.set()
        await asyncio.wait_for(running, 5)
