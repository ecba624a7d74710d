"""SIP over TLS against a real callswitch (RFC 3261 §26.2.1).

Debian's SIPp (sip-tester) is built without OpenSSL (`-t l1` says "To use a
TLS transport you must compile SIPp with OpenSSL"), so the caller here is
Python's ssl module speaking raw SIP, with the helpers of sipclient.py. It
verifies the server's self-signed certificate, so the server must present it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
import uuid
from pathlib import Path

import pytest

from .harness import LOOPBACK, CallswitchServer
from .sipclient import Response, options, parse_response

pytestmark = pytest.mark.callswitch(tls=True)

WAIT = 5.0


class TlsSipClient:
    """One TLS connection to the server; reads whole messages by Content-Length."""

    def __init__(self, server: tuple[str, int], cafile: Path) -> None:
        context = ssl.create_default_context(cafile=str(cafile))
        raw = socket.create_connection(server, timeout=WAIT)
        self.sock = context.wrap_socket(raw, server_hostname=server[0])
        self.server = server
        self.local: tuple[str, int] = self.sock.getsockname()[:2]
        self._buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_message(self, deadline: float) -> bytes | None:
        """The next SIP message (keep-alive CRLFs skipped), None at the deadline or EOF."""
        while True:
            self._buf = self._buf.lstrip(b"\r\n")
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if sep:
                match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
                length = int(match.group(1)) if match else 0
                if len(rest) >= length:
                    self._buf = rest[length:]
                    return head + sep + rest[:length]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._buf) > 1 << 20:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65535)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self._buf += chunk

    def transaction(self, request: bytes, call_id: str) -> list[Response]:
        """Send `request`; every response of its Call-ID up to the final one."""
        self.send(request)
        deadline = time.monotonic() + WAIT
        answers: list[Response] = []
        while (data := self.read_message(deadline)) is not None:
            response = parse_response(data)
            if response is None or response.headers.get("call-id") != call_id:
                continue  # a request from the server, or another call's
            answers.append(response)
            if response.status >= 200:
                break
        return answers


@pytest.fixture
def tls_client(server: CallswitchServer):
    assert server.sip_tls_port is not None and server.tls_cert is not None
    client = TlsSipClient((LOOPBACK, server.sip_tls_port), server.tls_cert)
    yield client
    client.close()


def _statuses(answers: list[Response]) -> list[int]:
    return [r.status for r in answers]


def test_ready_line_names_the_tls_listener(server):
    assert server.ready.get("sip_tls") == f"{LOOPBACK}:{server.sip_tls_port}"


@pytest.mark.parametrize("scheme", ["sip", "sips"])
def test_options_over_tls_gets_200(server, tls_client, scheme):
    request, call_id = options(tls_client.local, tls_client.server, "TLS")
    request = request.replace(b"OPTIONS sip:", f"OPTIONS {scheme}:".encode(), 1)
    answers = tls_client.transaction(request, call_id)
    assert _statuses(answers) == [200], server.tail()
    assert "INVITE" in answers[0].headers.get("allow", "")
    assert answers[0].headers["via"].startswith(f"SIP/2.0/TLS {tls_client.local[0]}:")


def _invite(client: TlsSipClient, user: str, call_id: str, from_tag: str, sink_port: int) -> bytes:
    host, port = client.local
    sdp = (
        f"v=0\r\no=tls 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
        f"m=audio {sink_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    ).encode()
    target = f"sips:{user}@{client.server[0]}:{client.server[1]}"
    head = (
        f"INVITE {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sips:tls-caller@{host}>;tag={from_tag}\r\n"
        f"To: <{target}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sips:tls-caller@{host}:{port};transport=tls>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    )
    return head.encode() + sdp


def _in_dialog(
    client: TlsSipClient, method: str, uri: str, cseq: int, call_id: str, from_tag: str, to: str
) -> bytes:
    host, port = client.local
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sips:tls-caller@{host}>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("user", ["echo", "tone"])
def test_call_over_tls_completes(server, tls_client, rtp_sink, user):
    """INVITE (sips: Request-URI), 200 with a TLS Contact, ACK, BYE, 200."""
    call_id, from_tag = f"{uuid.uuid4().hex}@{LOOPBACK}", uuid.uuid4().hex[:8]
    invite = _invite(tls_client, user, call_id, from_tag, rtp_sink.port)
    answers = tls_client.transaction(invite, call_id)
    assert answers and answers[-1].status == 200, f"{_statuses(answers)}\n{server.tail()}"
    ok = answers[-1]
    contact = ok.headers["contact"]
    assert contact == f"<sip:{LOOPBACK}:{server.sip_tls_port};transport=tls>", contact
    assert ok.raw.split(b"\r\n\r\n", 1)[1].startswith(b"v=0"), "the 200 carries no SDP answer"
    to = ok.headers["to"]
    assert ";tag=" in to
    remote_target = contact.strip("<>")
    tls_client.send(_in_dialog(tls_client, "ACK", remote_target, 1, call_id, from_tag, to))
    time.sleep(0.5)
    server.assert_alive()
    bye = _in_dialog(tls_client, "BYE", remote_target, 2, call_id, from_tag, to)
    answers = tls_client.transaction(bye, call_id)
    assert _statuses(answers) == [200], f"BYE over TLS: {_statuses(answers)}\n{server.tail()}"
    if user == "tone":
        assert rtp_sink.count() >= 10, f"tone sent only {rtp_sink.count()} RTP packets in 0.5 s"
    invites = [e for e in server.events("sip.invite") if e.get("call_id") == call_id]
    assert [e.get("transport") for e in invites] == ["TLS"], invites


def test_tls_listener_survives_a_client_that_speaks_no_tls(server, tls_client):
    with socket.create_connection((LOOPBACK, server.sip_tls_port), timeout=WAIT) as plain:
        request, _ = options(plain.getsockname()[:2], tls_client.server, "TCP")
        plain.sendall(request)
        plain.settimeout(WAIT)
        with contextlib.suppress(ConnectionResetError):
            assert b"SIP/2.0" not in plain.recv(65535)
    request, call_id = options(tls_client.local, tls_client.server, "TLS")
    assert _statuses(tls_client.transaction(request, call_id)) == [200]
    server.assert_alive()
