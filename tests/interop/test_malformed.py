"""Malformed SIP: a 400 or silence, never a crash, and the server still serves.

Part of it runs through SIPp (malformed requests in the middle of a normal
dialog of messages), part over raw sockets for input SIPp cannot produce:
random bytes, truncated datagrams, huge headers, half-sent TCP messages.
"""

from __future__ import annotations

import random
import socket
import time

import pytest

from .conftest import sipp_failure
from .harness import LOOPBACK
from .sipclient import statuses, tcp_exchange, tcp_options, udp_exchange, udp_options

# No test here needs fresh server state: share one process per module.
pytestmark = pytest.mark.callswitch_shared

TRANSPORTS = [pytest.param("u1", id="udp"), pytest.param("t1", id="tcp")]


def assert_still_serves(server) -> None:
    server.assert_alive()
    for name, ask in (("UDP", udp_options), ("TCP", tcp_options)):
        resp = ask(server.sip_addr)
        assert resp is not None, f"no answer to a good OPTIONS over {name}\n{server.tail()}"
        assert resp.status == 200, f"OPTIONS over {name} got {resp.status}\n{server.tail()}"
    server.assert_alive()


def invite(user: str = "nobody-here", body_len: int = 0, transport: str = "UDP") -> bytes:
    body = (
        "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:{user}@{LOOPBACK} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {LOOPBACK}:9;branch=z9hG4bK-{random.getrandbits(48):x};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:fuzz@127.0.0.1>;tag=fz\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: fuzz-{random.getrandbits(48):x}@127.0.0.1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:fuzz@127.0.0.1:9>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


# --- through SIPp -------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_malformed_requests_then_options(sipp, server, transport):
    result = sipp("malformed.xml", transport=transport, calls=1, timeout=40)
    assert result.ok(1), sipp_failure(
        result, server, "malformed requests must get 400 or nothing, then OPTIONS must get 200"
    )
    assert_still_serves(server)


def test_malformed_datagrams_then_options(sipp, server):
    result = sipp("malformed_udp.xml", transport="u1", calls=1, timeout=30)
    assert result.ok(1), sipp_failure(
        result, server, "bad Content-Length / truncated INVITE must get 400 or nothing"
    )
    assert_still_serves(server)


# --- raw UDP --------------------------------------------------------------------


def _request(start: str | None = None, drop: tuple[str, ...] = (), **replace: str) -> bytes:
    """A good OPTIONS, with its start line replaced, headers dropped or replaced."""
    tag = random.getrandbits(32)
    headers = {
        "Via": f"SIP/2.0/UDP {LOOPBACK}:9;branch=z9hG4bK-bad-{tag:x};rport",
        "Max-Forwards": "70",
        "From": f"<sip:bad@{LOOPBACK}>;tag={tag:x}",
        "To": f"<sip:{LOOPBACK}>",
        "Call-ID": f"bad-{tag:x}@{LOOPBACK}",
        "CSeq": "1 OPTIONS",
        "Content-Length": "0",
    }
    for name, value in replace.items():
        headers[name.replace("_", "-")] = value
    lines = [start or f"OPTIONS sip:{LOOPBACK} SIP/2.0"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


STRICT = frozenset({400})

# name -> (datagram, acceptable answers besides silence)
BAD_REQUESTS = {
    "cseq_not_a_number": (_request(CSeq="abc OPTIONS"), STRICT),
    "cseq_too_big": (_request(CSeq="4294967296 OPTIONS"), STRICT),
    "cseq_method_mismatch": (_request(CSeq="1 INVITE"), STRICT),
    "cseq_missing": (_request(drop=("CSeq",)), STRICT),
    "cseq_no_method": (_request(CSeq="1"), STRICT),
    "call_id_missing": (_request(drop=("Call-ID",)), STRICT),
    "from_missing": (_request(drop=("From",)), STRICT),
    "to_missing": (_request(drop=("To",)), STRICT),
    "via_missing": (_request(drop=("Via",)), STRICT),
    "via_garbage": (_request(Via="this is not a via"), STRICT),
    "start_line_garbage": (_request(start="%%garbage%% nonsense"), STRICT),
    "start_line_two_words": (_request(start="OPTIONS SIP/2.0"), STRICT),
    # 505 Version Not Supported (RFC 3261 21.5.7) is the precise answer.
    "start_line_bad_version": (_request(start=f"OPTIONS sip:{LOOPBACK} SIP/3.0"), {400, 505}),
    "request_uri_garbage": (_request(start="OPTIONS <<<>>> SIP/2.0"), {400, 416}),
    "max_forwards_garbage": (_request(Max_Forwards="many"), STRICT),
    "content_length_garbage": (_request(Content_Length="abc"), STRICT),
    "content_length_negative": (_request(Content_Length="-1"), STRICT),
    "content_length_beyond_datagram": (_request(Content_Length="500"), STRICT),
    "content_length_huge": (_request(Content_Length="99999999999999999999999"), STRICT),
    # Odd bytes in a URI: a lenient parser may serve the request.
    "nul_byte_in_to": (_request(To=f"<sip:a\x00b@{LOOPBACK}>"), {200, 400}),
    "non_utf8_in_to": (
        _request(To=f"<sip:XX@{LOOPBACK}>").replace(b"XX", b"\xff\xfe"),
        {200, 400},
    ),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_udp_bad_request(server, name):
    datagram, allowed = BAD_REQUESTS[name]
    replies = udp_exchange(server.sip_addr, [datagram], wait=0.5)
    codes = statuses(replies)
    assert set(codes) <= allowed, (
        f"{name}: got {codes}; expected one of {sorted(allowed)} or nothing\n{server.tail()}"
    )
    assert len(codes) <= 1, f"{name}: {len(codes)} responses to one datagram"
    assert_still_serves(server)


def test_udp_random_garbage(server):
    rng = random.Random(0x5EED)
    datagrams = []
    for _ in range(200):
        kind = rng.randrange(4)
        n = rng.randrange(1, 1400)
        if kind == 0:
            datagrams.append(rng.randbytes(n))
        elif kind == 1:
            datagrams.append(
                bytes(rng.choice(b"ABCDEFGHIJ :;<>@=\r\n\t/.0123456789") for _ in range(n))
            )
        elif kind == 2:
            datagrams.append(b"\r\n" * rng.randrange(1, 5) + rng.randbytes(n))
        else:
            datagrams.append(b"SIP/2.0 " + rng.randbytes(n))
    replies = []
    for i in range(0, len(datagrams), 20):
        replies += udp_exchange(server.sip_addr, datagrams[i : i + 20], wait=0.2)
        server.assert_alive()
    codes = statuses(replies)
    assert set(codes) <= {400}, (
        f"random bytes got responses {sorted(set(codes))}, only 400 is right"
    )
    assert len(codes) == len(replies), "replies to random bytes that are not SIP responses"
    assert_still_serves(server)


def test_udp_mutated_invites(server):
    """Byte flips in an INVITE to an unknown user: any answer, but no crash."""
    rng = random.Random(0xF11)
    datagrams = []
    for _ in range(200):
        msg = bytearray(invite())
        for _ in range(rng.randrange(1, 8)):
            msg[rng.randrange(len(msg))] = rng.randrange(256)
        datagrams.append(bytes(msg))
    for i in range(0, len(datagrams), 20):
        udp_exchange(server.sip_addr, datagrams[i : i + 20], wait=0.2)
        server.assert_alive()
    assert_still_serves(server)


def test_udp_truncated_invite(server):
    full = invite()
    cuts = sorted(set(range(1, len(full) - 1, 7)) | {len(full) - 1})
    replies = udp_exchange(server.sip_addr, [full[:n] for n in cuts], wait=1.0)
    codes = statuses(replies)
    assert set(codes) <= {400}, (
        f"truncated INVITEs got {sorted(set(codes))}: a cut message is a 400 (RFC 3261 18.3) "
        f"or is dropped, never processed"
    )
    assert_still_serves(server)


@pytest.mark.parametrize(
    "shape",
    ["one_60k_header", "5000_headers", "60k_request_uri"],
)
def test_udp_huge_message(server, shape):
    head = f"OPTIONS sip:{LOOPBACK} SIP/2.0\r\n"
    common = (
        f"Via: SIP/2.0/UDP {LOOPBACK}:9;branch=z9hG4bK-huge;rport\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n"
        "Call-ID: huge@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    )
    if shape == "one_60k_header":
        msg = head + common + "X-Huge: " + "a" * 60000 + "\r\nContent-Length: 0\r\n\r\n"
    elif shape == "5000_headers":
        msg = head + common + "X-H: 1\r\n" * 5000 + "Content-Length: 0\r\n\r\n"
    else:
        msg = (
            f"OPTIONS sip:{'u' * 60000}@{LOOPBACK} SIP/2.0\r\n"
            + common
            + "Content-Length: 0\r\n\r\n"
        )
    udp_exchange(server.sip_addr, [msg.encode()], wait=1.0)
    assert_still_serves(server)


# --- raw TCP --------------------------------------------------------------------


def test_tcp_random_garbage(server):
    rng = random.Random(0x7C9)
    for _ in range(20):
        data = rng.randbytes(rng.randrange(1, 4000))
        if rng.random() < 0.5:
            data += b"\r\n\r\n"
        reply, _closed = tcp_exchange(server.sip_addr, data, wait=0.2)
        codes = statuses(reply)
        assert set(codes) <= {400}, f"garbage over TCP got {sorted(set(codes))}, only 400 is right"
        server.assert_alive()
    assert_still_serves(server)


def test_tcp_truncated_invite_then_close(server):
    full = invite(transport="TCP")
    for cut in (10, len(full) // 3, len(full) // 2, len(full) - 20):
        reply, _closed = tcp_exchange(server.sip_addr, full[:cut], wait=0.2)
        codes = statuses(reply)
        assert set(codes) <= {100, 400}, f"INVITE cut at {cut} bytes over TCP got {codes}"
        server.assert_alive()
    assert_still_serves(server)


def test_tcp_huge_header_is_cut_off(server):
    """2 MB of one header line with no end: the server must answer with an
    error or close the connection rather than buffer without limit."""
    closed = False
    answered: list[int] = []
    with socket.create_connection(server.sip_addr, timeout=5) as sock:
        sock.sendall(f"OPTIONS sip:{LOOPBACK} SIP/2.0\r\nX-Huge: ".encode())
        chunk = b"a" * 65536
        try:
            for _ in range(32):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        except TimeoutError:
            pass  # the server stopped reading: then it must close or answer below
        deadline = time.monotonic() + 3
        buf = b""
        while not closed and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            buf += data
        answered = statuses(buf)
    server.assert_alive()
    assert closed or any(code >= 400 for code in answered), (
        "the server kept reading a 2 MB header without answering or closing the connection"
    )
    assert_still_serves(server)


def test_tcp_half_sent_message_does_not_block_others(server):
    with socket.create_connection(server.sip_addr, timeout=5) as stalled:
        stalled.sendall(invite(transport="TCP")[:100])
        resp = tcp_options(server.sip_addr, timeout=3)
        assert resp is not None and resp.status == 200, "a half-sent message blocked other clients"
        resp = udp_options(server.sip_addr, timeout=3)
        assert resp is not None and resp.status == 200, "a half-sent TCP message blocked UDP"
    assert_still_serves(server)


def test_tcp_pipelined_requests(server):
    """50 OPTIONS in one TCP write: framing by Content-Length, 50 answers."""
    from .sipclient import options

    with socket.create_connection(server.sip_addr, timeout=5) as sock:
        batch = b"".join(options(sock.getsockname(), server.sip_addr, "TCP")[0] for _ in range(50))
        sock.sendall(batch)
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and statuses(buf).count(200) < 50:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            buf += data
    assert statuses(buf).count(200) == 50, f"got {statuses(buf)} for 50 pipelined OPTIONS"
    assert_still_serves(server)
