"""The WebSocket client connection: websockets' sans-I/O protocol on an asyncio
transport, with its short path for whole data frames.

The server side of every test is the websockets library's own server, or raw
bytes when a test needs frames split or ordered in a particular way.
"""

from __future__ import annotations

import asyncio
import ssl
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import serve
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from media.websocket import WebSocketConnection, WebSocketOpenError, open_websocket
from tests.interop.harness import make_tls_cert


async def test_messages_both_ways_with_the_library_server():
    got: list[str] = []

    async def app(ws):
        async for message in ws:
            got.append(message)
            await ws.send(message.upper())

    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        received: list[bytes] = []
        conn = await open_websocket(
            f"ws://127.0.0.1:{port}/x", timeout=2, on_message=received.append
        )
        sizes = [0, 1, 125, 126, 65535, 65536, 200_000]  # every length encoding
        for size in sizes:
            conn.send_text(b"a" * size)
        for _ in range(200):
            if len(received) == len(sizes):
                break
            await asyncio.sleep(0.01)
        assert [len(m) for m in received] == sizes
        assert all(m == b"A" * len(m) for m in received)
        conn.close()
        assert await asyncio.wait_for(conn.closed, 30) is None  # 1000 both ways: normal
    assert [len(m) for m in got] == sizes


async def test_wss_with_a_verified_certificate(tmp_path):
    """wss:// (RFC 6455 §3): TLS under the same framing; a certificate the client does
    not trust fails the handshake with an open error."""
    cert, key = make_tls_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, ssl=server_tls) as server:
        port = server.sockets[0].getsockname()[1]
        trusted = ssl.create_default_context(cafile=str(cert))
        received: list[bytes] = []
        conn = await open_websocket(
            f"wss://127.0.0.1:{port}/", timeout=3, ssl_context=trusted,
            on_message=received.append,
        )  # fmt: skip
        for n in range(50):
            conn.send_text(b'{"n":%d}' % n)
        await wait_for(lambda: len(received) == 50)
        assert received[-1] == b'{"n":49}'
        conn.close()
        assert await asyncio.wait_for(conn.closed, 30) is None
        with pytest.raises(WebSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
            await open_websocket(f"wss://127.0.0.1:{port}/", timeout=3)


async def test_a_refused_port_and_a_non_websocket_url_raise_open_errors():
    with pytest.raises(WebSocketOpenError):
        await open_websocket("http://127.0.0.1:1/", timeout=1)
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with pytest.raises(WebSocketOpenError):
        await open_websocket(f"ws://127.0.0.1:{port}/", timeout=1)


async def test_a_server_that_refuses_the_upgrade_raises_an_open_error():
    async def http(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
        await writer.drain()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(WebSocketOpenError, match="403"):
            await open_websocket(f"ws://127.0.0.1:{port}/", timeout=2)


@pytest.mark.parametrize(
    "answer", [b"", b"HTTP/1.1 101 Switching", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"]
)
async def test_a_server_that_hangs_up_during_the_handshake_raises_an_open_error(answer):
    async def hang_up(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)  # nothing, half a status line, or a 101 without its headers
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(WebSocketOpenError):
            await open_websocket(f"ws://127.0.0.1:{port}/", timeout=2)


class RawServer(asyncio.Protocol):
    """Completes the handshake with the library's server protocol, then writes
    whatever bytes the test gives it (frames built by hand) and records what the
    client sends back."""

    def __init__(self, after_handshake: bytes = b"") -> None:
        self.ws = ServerProtocol()
        self.after_handshake = after_handshake
        self.transport: asyncio.Transport | None = None
        self.frames: list[Frame] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
                out = b"".join(self.ws.data_to_send()) + self.after_handshake
                self.transport.write(out)  # response and frames in one write
                continue
            self.frames.append(event)
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
        if self.ws.close_expected():
            self.transport.close()


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = False) -> bytes:
    return Frame(Opcode(opcode), payload, fin).serialize(mask=mask)


async def open_raw(server: RawServer) -> tuple[WebSocketConnection, list[bytes]]:
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    received: list[bytes] = []
    conn = await open_websocket(f"ws://127.0.0.1:{port}/", timeout=2, on_message=received.append)
    conn._listener = listener  # closed with the test's loop
    return conn, received


async def wait_for(condition, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_frames_in_the_handshake_packet_fragments_and_pings_are_handled_in_order():
    burst = (
        frame(0x1, b"first")  # same packet as the 101 response
        + frame(0x9, b"ping!")  # answered with a pong by the library
        + frame(0x1, b"frag-", fin=False)
        + frame(0x0, b"men-", fin=False)
        + frame(0x9, b"p2")  # a control frame may sit between fragments
        + frame(0x0, b"ted")
        + frame(0x2, b"\x00\x01binary")
        + frame(0x1, b"last")
    )
    server = RawServer(after_handshake=burst)
    conn, received = await open_raw(server)
    await wait_for(lambda: len(received) == 4)
    assert received == [b"first", b"frag-men-ted", b"\x00\x01binary", b"last"]
    await wait_for(lambda: len(server.frames) == 2)
    assert [(f.opcode, f.data) for f in server.frames] == [
        (Opcode.PONG, b"ping!"),
        (Opcode.PONG, b"p2"),
    ]
    conn.transport.abort()


async def test_a_masked_frame_from_the_server_fails_the_connection():
    server = RawServer(after_handshake=frame(0x1, b"masked", mask=True))
    conn, received = await open_raw(server)
    closed = await asyncio.wait_for(conn.closed, 30)
    assert received == []
    assert closed is not None and closed.sent is not None and closed.sent.code == 1002


async def test_a_message_over_max_size_closes_with_1009():
    loop = asyncio.get_running_loop()
    server = RawServer(after_handshake=frame(0x1, b"x" * 2048))
    listener = await loop.create_server(lambda: server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    received: list[bytes] = []
    conn = await open_websocket(
        f"ws://127.0.0.1:{port}/", timeout=2, max_size=1024, on_message=received.append
    )
    closed = await asyncio.wait_for(conn.closed, 30)
    assert received == []
    assert closed is not None and closed.sent is not None and closed.sent.code == 1009
    listener.close()


async def test_the_server_closing_normally_resolves_closed_with_none():
    server = RawServer(
        after_handshake=frame(0x1, b"bye") + frame(0x8, Close(1000, "done").serialize())
    )
    conn, received = await open_raw(server)
    assert await asyncio.wait_for(conn.closed, 30) is None
    assert received == [b"bye"]
    assert conn.ws.state is State.CLOSED


# -- the short path against the library's own parser, byte for byte


def connection() -> tuple[WebSocketConnection, list[bytes], list[bytes]]:
    """An open connection on a fake transport: what it delivers and what it writes."""
    received: list[bytes] = []
    written: list[bytes] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(bytes(data))

        def can_write_eof(self) -> bool:
            return True

        def write_eof(self) -> None:
            pass

        def abort(self) -> None:
            pass

        close = abort

    protocol = ClientProtocol(parse_uri("ws://test/"), state=State.OPEN)
    conn = WebSocketConnection.__new__(WebSocketConnection)
    conn.ws = protocol
    conn.on_message = received.append
    conn.transport = Transport()
    conn.max_size = 1 << 20
    conn._buffer = bytearray()
    conn._fragments = None
    conn._close_timer = None
    conn.writable = True
    conn._masks, conn._mask_at = b"", 0
    return conn, received, written


messages = st.lists(
    st.tuples(st.sampled_from([0x1, 0x2]), st.binary(max_size=300), st.integers(1, 3)),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(messages, st.lists(st.integers(1, 50), min_size=1, max_size=40))
def test_any_split_of_the_stream_delivers_the_same_messages(plan, cuts):
    """Messages (some fragmented in 1-3 frames) arriving in arbitrary TCP chunks come
    out whole and in order: the short path never cuts a frame in the wrong place."""
    wire = b""
    expected = []
    for opcode, payload, parts in plan:
        pieces = [payload[len(payload) * i // parts : len(payload) * (i + 1) // parts]
                  for i in range(parts)] if payload else [b""]  # fmt: skip
        for index, piece in enumerate(pieces):
            code = opcode if index == 0 else 0x0
            wire += frame(code, piece, fin=index == len(pieces) - 1)
        expected.append(payload)
    conn, received, _ = connection()
    position = 0
    for cut in cuts * (len(wire) // max(sum(cuts), 1) + 1):
        if position >= len(wire):
            break
        conn.data_received(wire[position : position + cut])
        position += cut
    if position < len(wire):
        conn.data_received(wire[position:])
    assert received == expected


def test_sent_frames_are_masked_with_fresh_keys_and_parse_back():
    conn, _, written = connection()
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 70000]
    for payload in payloads:
        conn.send_text(payload)
    server = ServerProtocol(state=State.OPEN, max_size=None)
    for chunk in written:
        server.receive_data(chunk)
    frames = server.events_received()
    assert [f.data for f in frames] == payloads
    assert all(f.opcode is Opcode.TEXT and f.fin for f in frames)
    keys = {chunk[2:6] if len(chunk) < 130 else None for chunk in written[:2]}
    assert len(keys) == 2  # not one key reused
    assert all(chunk[1] & 0x80 for chunk in written)  # the mask bit, client to server


def test_the_mask_pool_is_refilled_not_reused():
    conn, _, written = connection()
    for _ in range(1100):  # past one pool of 1,024 keys
        conn.send_text(b"")
    keys = [chunk[2:6] for chunk in written]
    assert len(set(keys)) > 1090  # random 32-bit keys: a handful of repeats at most


@pytest.mark.parametrize("length_field", [126, 127])
def test_a_truncated_extended_length_waits_for_more_bytes(length_field):
    conn, received, _ = connection()
    payload = b"p" * (200 if length_field == 126 else 70000)
    header = bytes((0x81, length_field))
    if length_field == 126:
        header += struct.pack("!H", len(payload))
    else:
        header += struct.pack("!Q", len(payload))
    wire = header + payload
    for byte_at in range(0, 12):  # the header arrives a byte at a time
        conn.data_received(wire[byte_at : byte_at + 1])
    conn.data_received(wire[12:])
    assert received == [payload]


async def test_a_closed_connection_goes_by_reference_counting():
    """websockets' protocol parks its parser generator, which holds the protocol, at
    its end for good: a cycle per connection, left for a full collection (rare in
    the server) with everything the connection holds, unless the parser is closed
    once the connection is lost."""
    import gc
    import weakref

    async def app(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(app, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        gc.collect()
        gc.disable()
        try:
            conn = await open_websocket(f"ws://127.0.0.1:{port}/x", timeout=2)
            conn.close()
            assert await asyncio.wait_for(conn.closed, 30) is None
            await asyncio.sleep(0)  # the transport lets go of its protocol
            protocol, connection = weakref.ref(conn.ws), weakref.ref(conn)
            del conn
            assert protocol() is None
            assert connection() is None
        finally:
            gc.enable()
