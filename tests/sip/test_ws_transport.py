"""sip/ws_transport.py on real loopback sockets: a SipEndpoint's WS and WSS
listeners (RFC 7118) against the websockets library's client.

OPTIONS is answered over ws:// and wss://, a handshake without the ``sip``
subprotocol is refused, Via and Contact of what we send on a WebSocket flow name
its listener, the flow is found again while it is open (a browser cannot be
connected to), and the per-source connection cap holds as for TCP. Every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from sip.connections import ConnectionTable
from sip.endpoint import SipEndpoint
from sip.parser import parse_message
from sip.transport import server_tls_context
from tests.interop.harness import make_tls_cert

LOOPBACK = "127.0.0.1"
WAIT = 5.0


def options(branch: str) -> str:
    return (
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/WS q8sk3ja1.invalid;branch=z9hG4bK{branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:127.0.0.1>\r\n"
        f"Call-ID: {branch}@ws\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    return make_tls_cert(tmp_path_factory.mktemp("wss"))


@pytest.fixture
async def endpoint(cert):
    refused: list[tuple[str, str, str]] = []
    table = ConnectionTable(
        asyncio.get_running_loop().time, max_per_source=2, message_timeout=5, idle_timeout=60
    )
    sip = SipEndpoint(
        LOOPBACK,
        0,
        LOOPBACK,
        connections=table,
        refused=lambda reason, source_ip, **f: refused.append((reason, source_ip, f["transport"])),
    )
    await sip.start(tcp=False)
    sip.ws_port = await sip.start_ws(0)
    sip.wss_port = await sip.start_ws(0, server_tls_context(str(cert[0]), str(cert[1])))
    sip.refusals = refused
    yield sip
    await sip.close()


def _insecure() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_the_listeners_are_named(endpoint):
    listeners = endpoint.transports.listeners()
    assert listeners["sip_ws"] == f"{LOOPBACK}:{endpoint.ws_port}"
    assert listeners["sip_wss"] == f"{LOOPBACK}:{endpoint.wss_port}"


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_options_is_answered_on_the_websocket(endpoint, scheme):
    port = endpoint.ws_port if scheme == "ws" else endpoint.wss_port
    ssl_context = _insecure() if scheme == "wss" else None
    async with (
        asyncio.timeout(WAIT),
        websockets.connect(
            f"{scheme}://{LOOPBACK}:{port}", subprotocols=["sip"], ssl=ssl_context
        ) as ws,
    ):
        assert ws.subprotocol == "sip"
        await ws.send(options("opt1"))
        response = parse_message((await ws.recv()).encode())
    assert response.status == 200
    assert response.via.params["received"] == LOOPBACK  # the .invalid host is not where it is


async def test_a_handshake_without_the_sip_subprotocol_is_refused(endpoint):
    async with asyncio.timeout(WAIT):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"ws://{LOOPBACK}:{endpoint.ws_port}"):
                pass
    assert refused.value.response.status_code == 400


async def test_what_we_send_on_the_flow_names_the_websocket_listener(endpoint):
    received = []
    endpoint.ua.handlers["MESSAGE"] = lambda request, txn, flow: received.append(flow)
    async with (
        asyncio.timeout(WAIT),
        websockets.connect(f"ws://{LOOPBACK}:{endpoint.ws_port}", subprotocols=["sip"]) as ws,
    ):
        await ws.send(options("flow1").replace("OPTIONS", "MESSAGE"))
        while not received:
            await asyncio.sleep(0.01)
        [flow] = received
        assert flow.transport == "WS" and flow.reliable and flow.is_open
        assert endpoint.ua.via_for(flow).startswith(f"SIP/2.0/WS {LOOPBACK}:{endpoint.ws_port};")
        assert endpoint.ua.contact_for(flow) == f"<sip:{LOOPBACK}:{endpoint.ws_port};transport=ws>"
        # The phone's connection is the way back to it, and the only one.
        assert endpoint.transports.flow_for("WS", *flow.remote) is flow
        assert endpoint.transports.flow_for("WS", LOOPBACK, 1) is None
        flow.send(b"MESSAGE sip:alice@q8sk3ja1.invalid SIP/2.0\r\nContent-Length: 0\r\n\r\n")
        assert (await ws.recv()).startswith("MESSAGE sip:alice@")
    async with asyncio.timeout(WAIT):
        while flow.is_open:
            await asyncio.sleep(0.01)
    assert endpoint.transports.flow_for("WS", *flow.remote) is None


async def test_a_source_past_its_connection_cap_is_refused(endpoint):
    url = f"ws://{LOOPBACK}:{endpoint.ws_port}"
    async with asyncio.timeout(WAIT):
        held = [await websockets.connect(url, subprotocols=["sip"]) for _ in range(2)]
        with pytest.raises((OSError, websockets.exceptions.WebSocketException)):
            async with websockets.connect(url, subprotocols=["sip"]):
                pass
        for ws in held:
            await ws.close()
    assert endpoint.refusals == [("sip.connections", LOOPBACK, "WS")]
