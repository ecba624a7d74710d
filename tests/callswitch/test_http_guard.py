"""callswitch/http.py's guard: uvicorn on loopback with short timeouts.

Requests must arrive whole in time, a source may hold only so many
connections, and WebSocket upgrades stay open and counted until they close.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from websockets.asyncio.client import connect

from callswitch.http import HttpServer
from sip.connections import ConnectionTable

WAIT = 5.0
HEADER_TIMEOUT = 0.3
BODY_TIMEOUT = 0.6


async def hello(request):
    body = await request.body()
    return PlainTextResponse(f"hello {len(body)}")


async def echo(websocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


APP = Starlette(routes=[Route("/", hello, methods=["GET", "POST"]), WebSocketRoute("/ws", echo)])


@pytest.fixture
async def http():
    refused: list[tuple[str, str]] = []
    table = ConnectionTable(
        asyncio.get_running_loop().time,
        max_per_source=3,
        message_timeout=float("inf"),
        idle_timeout=float("inf"),
    )
    server = HttpServer(
        APP,
        "127.0.0.1",
        0,
        table=table,
        refused=lambda reason, source_ip, **fields: refused.append((reason, source_ip)),
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
    )
    await server.start()
    yield server, table, refused
    await server.stop()


def port(server: HttpServer) -> int:
    return int(server.address.rsplit(":", 1)[1])


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed; fails if it did not within ``seconds``."""
    got = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(4096):
                got += chunk
    except ConnectionResetError:
        pass
    return got


async def test_a_request_whose_headers_do_not_arrive_in_time_is_closed(http):
    server, table, refused = http
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port(server))
    started = loop.time()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never the empty line
    assert await closed_within(reader, WAIT) == b""
    assert loop.time() - started >= HEADER_TIMEOUT * 0.9
    assert refused == [("http.timeout", "127.0.0.1")]
    assert len(table) == 0
    writer.close()


async def test_a_silent_connection_is_closed_after_the_header_timeout(http):
    server, _, refused = http
    reader, writer = await asyncio.open_connection("127.0.0.1", port(server))
    assert await closed_within(reader, WAIT) == b""
    assert refused == [("http.timeout", "127.0.0.1")]
    writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_closed(http):
    server, _, refused = http
    reader, writer = await asyncio.open_connection("127.0.0.1", port(server))
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert await closed_within(reader, WAIT) == b""
    assert refused == [("http.timeout", "127.0.0.1")]
    writer.close()


async def test_whole_requests_are_answered_on_a_kept_alive_connection(http):
    server, _, refused = http
    reader, writer = await asyncio.open_connection("127.0.0.1", port(server))
    for _ in range(3):
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(len(b"hello 3")) == b"hello 3"
        await asyncio.sleep(HEADER_TIMEOUT * 1.5)  # idle between requests: keep-alive's
    assert refused == []
    writer.close()


async def test_a_source_past_its_cap_is_closed_at_once(http):
    server, table, refused = http
    held = [await asyncio.open_connection("127.0.0.1", port(server)) for _ in range(3)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port(server))
    assert await closed_within(reader, HEADER_TIMEOUT * 0.8) == b""
    assert refused == [("http.connections", "127.0.0.1")]
    assert table.held_by("127.0.0.1") == 3
    for _, w in held:
        w.close()
    writer.close()


async def test_websockets_outlive_the_header_timeout_and_are_counted_until_closed(http):
    server, table, refused = http
    async with connect(f"ws://{server.address}/ws") as ws:
        await asyncio.sleep(HEADER_TIMEOUT * 3)
        await ws.send("ping")
        async with asyncio.timeout(WAIT):
            assert await ws.recv() == "ping"
        assert table.held_by("127.0.0.1") == 1
    async with asyncio.timeout(WAIT):
        while table.held_by("127.0.0.1"):
            await asyncio.sleep(0.01)
    assert refused == []
