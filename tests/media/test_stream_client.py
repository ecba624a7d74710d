"""The Media Streams WebSocket client on loopback: refusals, back-pressure, hang-up."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import pytest
from websockets.asyncio.server import serve

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


async def test_media_beyond_the_queue_is_dropped_not_waited_for():
    got: list[dict] = []

    async def slow(ws):
        async for message in ws:
            got.append(json.loads(message))

    async with serve(slow, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        leg = FakeLeg()
        client = MediaStreamClient(leg, f"ws://127.0.0.1:{port}/", protocol(), queue_size=10)
        await client.connect()
        ended = asyncio.Event()
        running = asyncio.ensure_future(client.run(ended))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        for i in range(100):  # one burst, no chance for the writer to run in between
            leg.on_frame(Frame("PCMU", bytes([i]) * 160))
        assert time.monotonic() - started < 0.1
        assert client.dropped == 90
        leg.on_dtmf("7")  # control messages are never dropped
        await asyncio.sleep(0.2)
        ended.set()
        assert await asyncio.wait_for(running, 5) is None
    events = [m["event"] for m in got]
    assert events[:2] == ["connected", "start"]
    media = [m for m in got if m["event"] == "media"]
    assert len(media) == 10
    assert base64.b64decode(media[9]["media"]["payload"]) == bytes([9]) * 160
    assert events[-2:] == ["dtmf", "stop"]
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
