"""Descriptor exhaustion over SIP TCP, TLS and WebSocket, as an outsider would try it.

One host opens more idle connections than ``--max-connections-per-ip`` allows:
those past the cap are closed at once (one ``sip.connections`` line for the
host), the others are closed once they have gone 30 s without completing a SIP
message (``sip.incomplete``), and meanwhile real calls over UDP, SIP over TCP
from other hosts and ``/health`` work.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time

import pytest

from tests.interop.conftest import sipp_failure
from tests.interop.sipclient import tcp_options, udp_options

from .flood import Flood
from .node import health, metric, refused_events

MESSAGE_TIMEOUT = 30.0  # sip/transport.py's MESSAGE_TIMEOUT, as the server applies it


def a_real_call(sipp, server, rtp_sink) -> None:
    result = sipp(
        "uac_bye.xml",
        transport="u1",
        service="tone",
        keys={"sink_port": rtp_sink.port},
        pause_ms=500,
        calls=1,
        timeout=20,
    )
    assert result.ok(1), sipp_failure(result, server, "a call over UDP failed during the flood")
    assert rtp_sink.count() >= 10, f"the tone sent only {rtp_sink.count()} RTP packets"


def test_idle_connections_from_one_host_are_capped_then_closed_and_the_node_still_works(
    server, sipp, rtp_sink
):
    with Flood() as flood:
        opened = time.monotonic()
        flood.open(server.sip_addr, "127.0.0.2", 130)
        flood.open(server.sip_addr, "127.0.0.3", 20, send=b"OPTIONS sip:x SIP/2.0\r\nVia: ")
        assert flood.wait_until_open(120, 10), f"{flood.open_count} of 150 still open"
        flood.watch(1.0)
        assert flood.open_count == 120, "past the cap of 100 from 127.0.0.2, 30 must be closed"
        # Another host over TCP, calls over UDP and the health check are unaffected.
        response = tcp_options(server.sip_addr)
        assert response is not None and response.status == 200, server.tail()
        assert udp_options(server.sip_addr) is not None
        a_real_call(sipp, server, rtp_sink)
        assert health(server) == 200
        lines = refused_events(server, "sip.connections")
        assert [(e["source_ip"], e["transport"]) for e in lines] == [("127.0.0.2", "TCP")]
        assert metric(server, "callswitch_refusals_total", reason="sip.connections") == 30
        # None of them sent a whole SIP message: all are closed after the timeout.
        assert flood.wait_until_open(0, MESSAGE_TIMEOUT + 15), (
            f"{flood.open_count} idle connections still open "
            f"{time.monotonic() - opened:.0f} s after they were opened"
        )
        assert time.monotonic() - opened >= MESSAGE_TIMEOUT - 1, "closed before their time"
    sources = {e["source_ip"] for e in refused_events(server, "sip.incomplete")}
    assert sources == {"127.0.0.2", "127.0.0.3"}
    response = tcp_options(server.sip_addr)
    assert response is not None and response.status == 200
    assert health(server) == 200


@pytest.mark.callswitch(tls=True, extra_args=("--max-connections-per-ip", "5"))
def test_tls_connections_count_from_before_their_handshake(server):
    """Idle TCP connections to the TLS port (no ClientHello) are capped like the
    others, and so are connections that complete their handshake."""
    target = ("127.0.0.1", server.sip_tls_port)
    with Flood() as flood:
        flood.open(target, "127.0.0.2", 8)
        assert flood.wait_until_open(5, 10), f"{flood.open_count} of 8 open"
        flood.watch(0.5)
        assert flood.open_count == 5
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    held, failed = [], 0
    try:
        for _ in range(7):
            raw = socket.socket()
            raw.bind(("127.0.0.3", 0))
            raw.settimeout(5)
            raw.connect(target)
            try:
                held.append(context.wrap_socket(raw))
            except (OSError, ssl.SSLError):
                failed += 1
                raw.close()
        assert (len(held), failed) == (5, 2), "five handshakes admitted, the rest refused"
        response = None
        held[0].sendall(
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.3:5999;branch=z9hG4bKt1\r\n"
            b"From: <sip:t@127.0.0.3>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls-cap\r\n"
            b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        response = held[0].recv(4096)
        assert response.startswith(b"SIP/2.0 200"), response
    finally:
        for sock in held:
            sock.close()
    lines = refused_events(server, "sip.connections")
    assert sorted((e["source_ip"], e["transport"]) for e in lines) == [
        ("127.0.0.2", "TLS"),
        ("127.0.0.3", "TLS"),
    ]


@pytest.mark.callswitch(extra_args=("--trusted-peer", "127.0.0.4/32"))
def test_a_trusted_peer_is_not_capped(server):
    with Flood() as flood:
        flood.open(server.sip_addr, "127.0.0.4", 120)
        flood.watch(2.0)
        assert flood.open_count == 120
    assert refused_events(server, "sip.connections") == []


@pytest.mark.callswitch(extra_args=("--max-connections-per-ip", "5"))
def test_sip_websocket_connections_count_from_before_their_handshake(server):
    """Idle TCP connections to the SIP WebSocket port (no HTTP upgrade) are capped like
    the others, and so are WebSockets that complete their handshake (RFC 7118)."""
    from websockets.sync.client import connect

    target = ("127.0.0.1", server.sip_ws_port)
    with Flood() as flood:
        flood.open(target, "127.0.0.2", 8)
        assert flood.wait_until_open(5, 10), f"{flood.open_count} of 8 open"
        flood.watch(0.5)
        assert flood.open_count == 5
    held, failed = [], 0
    with contextlib.ExitStack() as stack:
        for _ in range(7):
            raw = socket.socket()
            raw.bind(("127.0.0.3", 0))
            raw.settimeout(5)
            raw.connect(target)
            url = f"ws://127.0.0.1:{target[1]}"
            try:
                held.append(stack.enter_context(connect(url, sock=raw, subprotocols=["sip"])))
            except Exception:  # refused: closed before or during the handshake
                failed += 1
                raw.close()
        assert (len(held), failed) == (5, 2), "five WebSockets admitted, the rest refused"
        held[0].send(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS k3u9.invalid;branch=z9hG4bKw1\r\n"
            "From: <sip:t@k3u9.invalid>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: ws-cap\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        response = held[0].recv(timeout=5)
        assert response.startswith("SIP/2.0 200"), response
    lines = refused_events(server, "sip.connections")
    assert sorted((e["source_ip"], e["transport"]) for e in lines) == [
        ("127.0.0.2", "WS"),
        ("127.0.0.3", "WS"),
    ]
