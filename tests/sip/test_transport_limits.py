"""sip/transport.py with a ConnectionTable: real TCP sockets on loopback.

The listener closes a connection past its source's cap at once, reports the
refusal, and closes connections that do not complete a message in time.
Every wait is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from sip.connections import ConnectionTable
from sip.transport import Transports

LOOPBACK = "127.0.0.1"
WAIT = 5.0

OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKlimits\r\n"
    b"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
    b"Call-ID: limits@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the server closed (EOF or reset) within WAIT."""
    try:
        async with asyncio.timeout(WAIT):
            while await reader.read(4096):
                pass
    except ConnectionResetError:
        pass
    return True


@pytest.fixture
async def listener():
    refused: list[tuple[str, str]] = []
    received: list[bytes] = []
    table = ConnectionTable(
        asyncio.get_running_loop().time, max_per_source=2, message_timeout=0.3, idle_timeout=60
    )
    transports = Transports(
        lambda data, flow: received.append(data),
        table=table,
        refused=lambda reason, source_ip, **fields: refused.append((reason, source_ip)),
    )
    await transports.start(LOOPBACK, 0, udp=False)
    port = transports.listeners()["sip_tcp"].rsplit(":", 1)[1]
    yield transports, int(port), refused, received
    await transports.close()


async def test_a_source_past_its_cap_is_closed_at_once_and_refused(listener):
    transports, port, refused, _ = listener
    held = [await asyncio.open_connection(LOOPBACK, port) for _ in range(2)]
    async with asyncio.timeout(WAIT):
        while transports.table.held_by(LOOPBACK) < 2:
            await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    assert await closed_by_peer(reader)
    assert refused == [("sip.connections", LOOPBACK)]
    assert transports.table.held_by(LOOPBACK) == 2
    for _, w in held:
        w.close()
    writer.close()


async def test_a_connection_without_a_complete_message_is_closed_after_the_timeout(listener):
    transports, port, refused, received = listener
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(OPTIONS[:40])  # half a message, then nothing
    _, sip_writer = await asyncio.open_connection(LOOPBACK, port)
    sip_writer.write(OPTIONS)
    assert await closed_by_peer(reader)
    assert ("sip.incomplete", LOOPBACK) in refused
    assert received == [OPTIONS]
    # The one that completed a message is still open: it gets the idle timeout.
    assert len(transports.table) == 1
    sip_writer.write(OPTIONS)
    async with asyncio.timeout(WAIT):
        while len(received) < 2:
            await asyncio.sleep(0.01)
    writer.close()
    sip_writer.close()


async def test_a_refused_connection_costs_no_descriptor_for_long(listener):
    transports, port, refused, _ = listener
    socks = []
    for _ in range(20):
        s = socket.socket()
        s.setblocking(False)
        socks.append(s)
        with contextlib.suppress(BlockingIOError):
            s.connect((LOOPBACK, port))
    async with asyncio.timeout(WAIT):
        while len(refused) < 18:
            await asyncio.sleep(0.01)
    assert len(transports.table) == 2
    assert {reason for reason, _ in refused} == {"sip.connections"}
    for s in socks:
        s.close()


@pytest.fixture
async def tls_listener(tmp_path, monkeypatch):
    from sip import transport as transport_module
    from sip.transport import server_tls_context
    from tests.interop.harness import make_tls_cert

    monkeypatch.setattr(transport_module, "TLS_HANDSHAKE_TIMEOUT", 0.3)
    cert, key = make_tls_cert(tmp_path / "tls")
    refused: list[tuple[str, str]] = []
    table = ConnectionTable(asyncio.get_running_loop().time, max_per_source=2, idle_timeout=60)
    transports = Transports(
        lambda data, flow: None,
        table=table,
        refused=lambda reason, source_ip, **fields: refused.append((reason, source_ip)),
    )
    await transports.start_tls(LOOPBACK, 0, server_tls_context(str(cert), str(key)))
    yield transports, transports.tls_port, refused
    await transports.close()


async def test_tls_connections_count_before_their_handshake_which_must_end_in_time(tls_listener):
    transports, port, refused = tls_listener
    held = [await asyncio.open_connection(LOOPBACK, port) for _ in range(2)]
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    assert await closed_by_peer(reader)  # the third, before any ClientHello
    assert refused == [("sip.connections", LOOPBACK)]
    for held_reader, _ in held:  # no handshake within TLS_HANDSHAKE_TIMEOUT: closed
        assert await closed_by_peer(held_reader)
    async with asyncio.timeout(WAIT):
        while len(transports.table):
            await asyncio.sleep(0.01)
    for _, w in held:
        w.close()
    writer.close()
