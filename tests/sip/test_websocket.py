"""sip/websocket.py: the SIP WebSocket core (RFC 7118) without a socket or a loop.

The peer is websockets' own sans-I/O client, so the bytes are a real browser's
shape: a masked handshake and masked frames.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG
from sip.websocket import SUBPROTOCOL, SipWebSocket

OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
    b"Call-ID: ws@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def client(subprotocols: list[str] | None = [SUBPROTOCOL]) -> ClientProtocol:  # noqa: B006
    return ClientProtocol(parse_uri("ws://127.0.0.1:5066"), subprotocols=subprotocols)


def handshake_bytes(peer: ClientProtocol) -> bytes:
    peer.send_request(peer.connect())
    return b"".join(peer.data_to_send())


def opened(peer: ClientProtocol | None = None) -> tuple[SipWebSocket, ClientProtocol]:
    """A server core and a client that completed the opening handshake."""
    peer = peer or client()
    core = SipWebSocket()
    assert core.receive_data(handshake_bytes(peer)) == []
    out, close = core.data_to_send()
    assert not close
    peer.receive_data(out)
    [response] = peer.events_received()
    assert isinstance(response, Response) and response.status_code == 101
    assert response.headers["Sec-WebSocket-Protocol"] == "sip"
    return core, peer


def to_client(core: SipWebSocket, peer: ClientProtocol) -> list[Frame]:
    out, _ = core.data_to_send()
    peer.receive_data(out)
    return [e for e in peer.events_received() if isinstance(e, Frame)]


def test_the_handshake_needs_the_sip_subprotocol():
    core, _ = opened()
    assert core.handshaken and core.open and core.refusal is None


def test_a_handshake_without_sip_is_refused_with_400_and_closed():
    for offered in (None, ["chat"]):
        core = SipWebSocket()
        peer = client(offered)
        assert core.receive_data(handshake_bytes(peer)) == []
        out, close = core.data_to_send()
        assert out.startswith(b"HTTP/1.1 400 ") and close
        assert "sip" in (core.refusal or "") and not core.handshaken and not core.open


def test_text_and_binary_messages_are_sip_messages():
    core, peer = opened()
    peer.send_text(OPTIONS)
    peer.send_binary(OPTIONS.replace(b"ws1", b"ws2"))
    received = core.receive_data(b"".join(peer.data_to_send()))
    assert received == [OPTIONS, OPTIONS.replace(b"ws1", b"ws2")]


def test_a_fragmented_message_is_joined():
    core, peer = opened()
    peer.send_text(OPTIONS[:50], fin=False)
    peer.send_continuation(OPTIONS[50:120], fin=False)
    first = core.receive_data(b"".join(peer.data_to_send()))
    assert first == [] and core.pending
    peer.send_continuation(OPTIONS[120:], fin=True)
    assert core.receive_data(b"".join(peer.data_to_send())) == [OPTIONS]
    assert not core.pending


def test_a_message_over_the_limit_closes_with_1009():
    core = SipWebSocket(max_message=100)
    peer = client()
    core.receive_data(handshake_bytes(peer))
    peer.receive_data(core.data_to_send()[0])
    peer.events_received()
    peer.send_text(OPTIONS[:60], fin=False)
    peer.send_continuation(OPTIONS[60:], fin=True)
    assert core.receive_data(b"".join(peer.data_to_send())) == []
    out, close = core.data_to_send()
    assert close and not core.open
    peer.receive_data(out)
    assert peer.close_rcvd is not None and peer.close_rcvd.code == 1009


def test_crlf_messages_are_keepalives():
    core, peer = opened()
    peer.send_text(b"\r\n\r\n")
    peer.send_text(b"\r\n")
    assert core.receive_data(b"".join(peer.data_to_send())) == [KEEPALIVE_PING, KEEPALIVE_PONG]


def test_what_we_send_is_one_text_message_and_binary_when_not_utf8():
    core, peer = opened()
    assert core.send_message(OPTIONS)
    assert core.send_message(b"\xff\xfe not utf-8")
    frames = to_client(core, peer)
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.TEXT, OPTIONS),
        (Opcode.BINARY, b"\xff\xfe not utf-8"),
    ]


def test_a_ping_is_answered_and_a_close_is_completed():
    core, peer = opened()
    peer.send_ping(b"hi")
    assert core.receive_data(b"".join(peer.data_to_send())) == []
    [pong] = to_client(core, peer)
    assert pong.opcode is Opcode.PONG and pong.data == b"hi"
    peer.send_close(1000)
    core.receive_data(b"".join(peer.data_to_send()))
    out, close = core.data_to_send()
    assert close and not core.open and not core.send_message(OPTIONS)
    peer.receive_data(out)
    assert peer.state is State.CLOSING or peer.state is State.CLOSED


def test_nothing_is_sent_before_the_handshake():
    core = SipWebSocket()
    assert not core.send_message(OPTIONS)
    assert core.data_to_send() == (b"", False)


def test_every_prefix_of_a_message_waits_for_the_rest():
    core, peer = opened()
    peer.send_text(OPTIONS)
    data = b"".join(peer.data_to_send())
    for i in range(len(data)):
        assert core.receive_data(data[i : i + 1]) == ([] if i < len(data) - 1 else [OPTIONS])


@given(st.binary(max_size=2048))
def test_any_bytes_before_the_handshake_are_refused_or_awaited(data):
    core = SipWebSocket()
    assert core.receive_data(data) == []
    core.data_to_send()
    assert not core.open or core.handshaken


@given(st.lists(st.binary(max_size=512), max_size=8))
def test_any_bytes_after_the_handshake_never_raise(chunks):
    core, _ = opened()
    for chunk in chunks:
        for item in core.receive_data(chunk):
            assert isinstance(item, bytes) or item in (KEEPALIVE_PING, KEEPALIVE_PONG)
        core.data_to_send()


def test_a_released_core_goes_by_reference_counting():
    import gc
    import weakref

    core, peer = opened()
    peer.send_close(1000, "")
    core.receive_data(b"".join(peer.data_to_send()))
    gc.collect()
    gc.disable()
    try:
        core.release()
        gone = weakref.ref(core._protocol)
        del core
        assert gone() is None
    finally:
        gc.enable()
