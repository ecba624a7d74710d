"""SIP over WebSocket (RFC 7118) on a live `callswitch serve`, by hand: OPTIONS over
ws:// with the subprotocol `sip` is answered 200 on the same socket, a handshake
without `sip` is refused with 400, and the ready line names the listener."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from sip.parser import parse_message

pytestmark = pytest.mark.callswitch_shared

OPTIONS = (
    "OPTIONS sip:{host} SIP/2.0\r\n"
    "Via: SIP/2.0/WS h7g4esbi.invalid;branch=z9hG4bKlivews1\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:probe@h7g4esbi.invalid>;tag=p1\r\nTo: <sip:{host}>\r\n"
    "Call-ID: live-ws-options\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


async def test_options_over_ws_is_answered_200(server):
    url = f"ws://127.0.0.1:{server.sip_ws_port}"
    async with asyncio.timeout(10), websockets.connect(url, subprotocols=["sip"]) as ws:
        assert ws.subprotocol == "sip"
        await ws.send(OPTIONS.format(host=server.sip_target))
        reply = await ws.recv()
    response = parse_message(reply.encode() if isinstance(reply, str) else reply)
    assert response.status == 200 and response.call_id == "live-ws-options"
    assert "INVITE" in (response.headers.get("Allow") or "")
    [ready] = server.events("ready")
    assert ready["sip_ws"] == f"127.0.0.1:{server.sip_ws_port}"


async def test_a_handshake_without_sip_is_refused(server):
    async with asyncio.timeout(10):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{server.sip_ws_port}"):
                pass
    assert refused.value.response.status_code == 400
