"""The asyncio adapter on loopback sockets: framing, padding, the relay path, caps."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest

from turn.policy import Quotas
from turn.server import TurnServer, TurnSettings
from turn.stun import (
    ALLOCATE,
    CHANNEL_BIND,
    CREATE_PERMISSION,
    DATA,
    INDICATION,
    REFRESH,
    REQUEST,
    SEND,
    SUCCESS,
    Attr,
    Message,
    long_term_key,
    parse,
)

KEY = long_term_key("alice", "callswitch", "pw")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def turn_server():
    servers = []

    async def start(**options) -> TurnServer:
        settings = TurnSettings(
            bind="127.0.0.1",
            port=_free_port(),
            relay_ports=(45000, 45999),
            public_address="127.0.0.1",
            users=["alice:pw"],
            allow_peers=["127.0.0.0/8"],
            **options,
        )
        server = TurnServer(settings)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.count = 0

    def datagram_received(self, data, addr) -> None:
        self.count += 1
        self.transport.sendto(data, addr)


async def _echo():
    loop = asyncio.get_running_loop()
    transport, echo = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    return transport, echo, transport.get_extra_info("sockname")


def _request(method: int, *attrs, nonce: str | None = None) -> bytes:
    message = Message(method, REQUEST, os.urandom(12))
    for attr, value in attrs:
        message.add(attr, value)
    if nonce is None:
        return message.encode()
    message.add(Attr.USERNAME, "alice").add(Attr.REALM, "callswitch").add(Attr.NONCE, nonce)
    return message.encode(KEY)


class StreamClient:
    """A TURN client over TCP that reads whole frames (STUN or padded ChannelData)."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer

    async def frame(self) -> bytes:
        head = await asyncio.wait_for(self.reader.readexactly(4), 5)
        length = struct.unpack("!H", head[2:4])[0]
        if head[0] < 0x40:
            return head + await self.reader.readexactly(16 + length)
        return head + await self.reader.readexactly(length + (-length % 4))

    async def ask(self, data: bytes) -> Message:
        self.writer.write(data)
        return parse(await self.frame())


async def test_tcp_framing_padding_and_the_relay_path(turn_server):
    server = await turn_server()
    transport, echo, peer = await _echo()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    client = StreamClient(reader, writer)
    try:
        challenge = await client.ask(_request(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 17)))
        nonce = challenge.get(Attr.NONCE)
        allocated = await client.ask(
            _request(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 17), nonce=nonce)
        )
        assert allocated.cls == SUCCESS
        relayed = allocated.get(Attr.XOR_RELAYED_ADDRESS)
        bind = _request(
            CHANNEL_BIND, (Attr.CHANNEL_NUMBER, 0x4001), (Attr.XOR_PEER_ADDRESS, peer), nonce=nonce
        )
        assert (await client.ask(bind)).cls == SUCCESS
        # Two ChannelData frames with odd sizes (padded) and a Refresh, in one write.
        writer.write(
            struct.pack("!HH", 0x4001, 5) + b"hello\0\0\0"
            + struct.pack("!HH", 0x4001, 1) + b"!\0\0\0"
            + _request(REFRESH, (Attr.LIFETIME, 900), nonce=nonce)
        )  # fmt: skip
        frames = [await client.frame() for _ in range(3)]
        stun = [f for f in frames if f[0] < 0x40]
        channel_data = sorted(f for f in frames if f[0] >= 0x40)
        assert parse(stun[0]).get(Attr.LIFETIME) == 900
        assert channel_data == sorted(
            [
                struct.pack("!HH", 0x4001, 5) + b"hello\0\0\0",
                struct.pack("!HH", 0x4001, 1) + b"!\0\0\0",
            ]
        )
        assert echo.count == 2
        # The peer saw the relayed address.
        assert relayed[0] == "127.0.0.1" and 45000 <= relayed[1] <= 45999
    finally:
        writer.close()
        transport.close()
    # Closing the connection ends the allocation and frees its relay.
    for _ in range(50):
        if not server.manager.allocations:
            break
        await asyncio.sleep(0.02)
    assert not server.manager.allocations and not server.manager.ports.in_use


class UdpClient(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait(data)


async def test_udp_send_indications_data_indications_and_the_bandwidth_cap(turn_server):
    server = await turn_server(quotas=Quotas(bytes_per_second=1000))
    transport, echo, peer = await _echo()
    loop = asyncio.get_running_loop()
    udp, client = await loop.create_datagram_endpoint(
        UdpClient, remote_addr=("127.0.0.1", server.settings.port)
    )
    try:
        udp.sendto(_request(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 17)))
        nonce = parse(await asyncio.wait_for(client.queue.get(), 5)).get(Attr.NONCE)
        udp.sendto(_request(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 17), nonce=nonce))
        assert parse(await asyncio.wait_for(client.queue.get(), 5)).cls == SUCCESS
        send = Message(SEND, INDICATION, os.urandom(12))
        send.add(Attr.XOR_PEER_ADDRESS, peer).add(Attr.DATA, b"x" * 100)
        udp.sendto(send.encode())  # no permission yet: dropped
        udp.sendto(_request(CREATE_PERMISSION, (Attr.XOR_PEER_ADDRESS, peer), nonce=nonce))
        assert parse(await asyncio.wait_for(client.queue.get(), 5)).cls == SUCCESS
        await asyncio.sleep(0.05)
        assert echo.count == 0
        for _ in range(30):  # 3000 bytes against a cap of 1000 per second
            udp.sendto(send.encode())
        await asyncio.sleep(0.3)
        answers = []
        while not client.queue.empty():
            answers.append(parse(client.queue.get_nowait()))
        assert all((a.method, a.cls) == (DATA, INDICATION) for a in answers)
        assert all(a.get(Attr.XOR_PEER_ADDRESS) == peer for a in answers)
        assert all(a.get(Attr.DATA) == b"x" * 100 for a in answers)
        # Out and back share the budget: 10 out, 0 back, or some split; never all 30.
        assert 1 <= echo.count <= 10 and echo.count + len(answers) <= 11
    finally:
        udp.close()
        transport.close()


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n\r\n", b"\xff" * 8, b"\x40\x00\x00\x04abcd"])
async def test_a_stream_that_is_not_turn_is_closed(turn_server, data):
    server = await turn_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    writer.write(data)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_connection_that_never_allocates_is_closed(turn_server, monkeypatch):
    monkeypatch.setattr("turn.server.TCP_IDLE_S", 0.2)
    server = await turn_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    writer.write(_request(ALLOCATE, (Attr.REQUESTED_TRANSPORT, 17)))  # answered 401, no more
    assert parse(await StreamClient(reader, writer).frame()).get(Attr.ERROR_CODE)[0] == 401
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
