"""SIP over TLS (RFC 3261 §26.2.1): a real TLS listener and client on loopback.

The certificate is a fresh self-signed one for 127.0.0.1 (openssl). Every wait
is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from sip.message import Response
from sip.parser import parse_message
from sip.transport import (
    Flow,
    TlsConnection,
    Transports,
    client_tls_context,
    server_tls_context,
)
from sip.ua import UserAgent
from tests.interop.harness import make_tls_cert

LOOPBACK = "127.0.0.1"
WAIT = 5.0


def options(branch: str, body: bytes = b"") -> bytes:
    head = (
        f"OPTIONS sip:{LOOPBACK} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {LOOPBACK}:5999;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:test@{LOOPBACK}>;tag=t1\r\n"
        f"To: <sip:{LOOPBACK}>\r\n"
        f"Call-ID: {branch}@test\r\n"
        "CSeq: 1 OPTIONS\r\n"
        + ("Content-Type: text/plain\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


class Peer:
    """Transports plus a record of what they received, and on which flow."""

    def __init__(self, tls_client: ssl.SSLContext | None = None) -> None:
        self.received: list[tuple[bytes, Flow]] = []
        self.arrived = asyncio.Event()
        self.transports = Transports(self._receive, tls_client)

    def _receive(self, data: bytes, flow: Flow) -> None:
        self.received.append((data, flow))
        self.arrived.set()

    async def wait_for(self, count: int) -> list[tuple[bytes, Flow]]:
        async with asyncio.timeout(WAIT):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@pytest.fixture
async def server(cert):
    peer = Peer()
    await peer.transports.start_tls(LOOPBACK, 0, server_tls_context(str(cert[0]), str(cert[1])))
    yield peer
    await peer.transports.close()


@pytest.fixture
async def client(cert):
    peer = Peer(client_tls_context(ca_file=str(cert[0])))  # verifies the server's certificate
    yield peer
    await peer.transports.close()


async def wait_until(condition, what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


async def test_listener_is_named_and_has_a_port(server):
    port = server.transports.tls_port
    assert port and server.transports.listeners() == {"sip_tls": f"{LOOPBACK}:{port}"}


async def test_messages_are_framed_both_ways(server, client):
    port = server.transports.tls_port
    flow = client.transports.flow_for("TLS", LOOPBACK, port)
    assert isinstance(flow, TlsConnection) and flow.transport == "TLS" and flow.reliable
    first, second = options("z9hG4bK-1"), options("z9hG4bK-2", b"hello, body")
    # Sent before the handshake ends: queued, then written in order.
    flow.send(first + second[:50])
    flow.send(second[50:])
    received = await server.wait_for(2)
    assert [data for data, _ in received] == [first, second]
    server_flow = received[0][1]
    assert received[1][1] is server_flow
    assert server_flow.transport == "TLS" and server_flow.remote == flow.local
    response = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 3\r\n\r\nabc"
    server_flow.send(b"\r\n\r\n" + response)  # a keep-alive ping first (RFC 5626)
    back = await client.wait_for(1)
    assert back[0] == (response, flow)


async def test_flow_for_reuses_the_connection(server, client):
    port = server.transports.tls_port
    flow = client.transports.flow_for("TLS", LOOPBACK, port)
    assert client.transports.flow_for("tls", LOOPBACK, port) is flow  # while connecting
    flow.send(options("z9hG4bK-a"))
    await server.wait_for(1)
    again = client.transports.flow_for("TLS", LOOPBACK, port)
    assert again is flow
    again.send(options("z9hG4bK-b"))
    received = await server.wait_for(2)
    assert received[0][1] is received[1][1]  # one connection on the server side
    # TCP to the same address is another connection, not this one.
    assert client.transports.flow_for("TCP", LOOPBACK, port) is not flow


async def test_default_port_is_5061():
    peer = Peer()
    try:
        flow = peer.transports.flow_for("TLS", LOOPBACK, None)
        assert flow is not None and flow.remote == (LOOPBACK, 5061)
    finally:
        await peer.transports.close()


async def test_unverified_by_default_verified_with_a_ca(server, tmp_path):
    port = server.transports.tls_port
    default = Peer()  # no CA configured: the self-signed certificate is accepted
    other_ca, _ = make_tls_cert(tmp_path / "other")
    strict = Peer(client_tls_context(ca_file=str(other_ca)))
    try:
        default.transports.flow_for("TLS", LOOPBACK, port).send(options("z9hG4bK-d"))
        received = await server.wait_for(1)
        assert received[0][0] == options("z9hG4bK-d")
        refused = strict.transports.flow_for("TLS", LOOPBACK, port)
        refused.send(options("z9hG4bK-s"))
        await wait_until(lambda: not refused.is_open, "a connection to an untrusted cert")
        await asyncio.sleep(0.1)
        assert len(server.received) == 1
    finally:
        await default.transports.close()
        await strict.transports.close()


def _raw_tls(port: int, cafile: Path) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(cafile))
    sock = socket.create_connection((LOOPBACK, port), timeout=WAIT)
    return context.wrap_socket(sock, server_hostname=LOOPBACK)


async def test_garbage_and_broken_connections_leave_the_listener_up(server, client, cert):
    port = server.transports.tls_port

    def abuse() -> bytes:
        # Not TLS at all: the handshake fails and the server hangs up.
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as sock:
            sock.sendall(b"OPTIONS sip:x SIP/2.0\r\n\r\n" * 10)
            try:
                leftover = sock.recv(100)
            except ConnectionResetError:
                leftover = b""
        # TLS, then a message cut off in its body, then close.
        with _raw_tls(port, cert[0]) as tls:
            tls.sendall(options("z9hG4bK-cut", b"0123456789")[:-4])
        # TLS, then bytes that are not SIP: the server closes the connection.
        with _raw_tls(port, cert[0]) as tls:
            tls.sendall(b"\x00\x01garbage that is not SIP\r\n\r\n")
            closed = tls.recv(100)
        return leftover + closed

    seen = await asyncio.wait_for(asyncio.to_thread(abuse), WAIT * 3)
    assert b"SIP/2.0" not in seen  # nothing was answered, nothing delivered
    assert server.received == []
    flow = client.transports.flow_for("TLS", LOOPBACK, port)
    flow.send(options("z9hG4bK-after"))
    received = await server.wait_for(1)
    assert received[0][0] == options("z9hG4bK-after")


async def test_server_drops_a_connection_after_garbage(server, cert):
    port = server.transports.tls_port

    def send_garbage() -> bytes:
        with _raw_tls(port, cert[0]) as tls:
            tls.sendall(b"NOT SIP AT ALL\r\nbroken header line\r\n\r\n")
            data = b""
            while chunk := tls.recv(100):
                data += chunk
                if len(data) > 10_000:
                    break
            return data  # recv returned b"": the server closed

    data = await asyncio.wait_for(asyncio.to_thread(send_garbage), WAIT)
    assert data == b""


# -- the user agent names the TLS listener in Via and Contact


class TlsFlow:
    transport = "TLS"
    reliable = True
    is_open = True

    def __init__(self) -> None:
        self.remote = ("10.0.0.1", 40001)
        self.local = ("192.0.2.1", 5061)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def test_contact_and_via_of_tls_flows_name_the_tls_port():
    flow = TlsFlow()
    ua = UserAgent(host="192.0.2.1", port=5060, clock=lambda: 0.0, flow_for=lambda *a: flow)
    ua.tls_port = 5071
    assert ua.contact_for(flow) == "<sip:192.0.2.1:5071;transport=tls>"
    sessions = []

    def on_invite(session) -> None:
        sessions.append(session)
        session.answer(b"v=0\r\n")

    ua.on_invite = on_invite
    invite = (
        b"INVITE sips:echo@192.0.2.1:5071 SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 10.0.0.1:40001;branch=z9hG4bK-tls1;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sips:alice@10.0.0.1>;tag=a1\r\n"
        b"To: <sips:echo@192.0.2.1>\r\n"
        b"Call-ID: tls-1@10.0.0.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:alice@10.0.0.1:40001;transport=tls>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    ua.receive(invite, flow)
    responses = [parse_message(data) for data in flow.sent]
    assert [r.status for r in responses if isinstance(r, Response)] == [100, 200]
    ok = responses[-1]
    assert ok.headers.get("Contact") == "<sip:192.0.2.1:5071;transport=tls>"
    ack = (
        "ACK sip:192.0.2.1:5071;transport=tls SIP/2.0\r\n"
        "Via: SIP/2.0/TLS 10.0.0.1:40001;branch=z9hG4bK-tls2;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sips:alice@10.0.0.1>;tag=a1\r\n"
        f"To: <sips:echo@192.0.2.1>;tag={ok.to_tag}\r\n"
        "Call-ID: tls-1@10.0.0.1\r\n"
        "CSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    ua.receive(ack, flow)
    sessions[0].hangup()
    bye = parse_message(flow.sent[-1])
    assert bye.method == "BYE"
    assert bye.headers.get("Via").startswith("SIP/2.0/TLS 192.0.2.1:5071;branch=z9hG4bK")


def test_without_a_tls_listener_the_sip_port_is_used():
    flow = TlsFlow()
    ua = UserAgent(host="192.0.2.1", port=5060, clock=lambda: 0.0, flow_for=lambda *a: flow)
    assert ua.contact_for(flow) == "<sip:192.0.2.1:5060;transport=tls>"
