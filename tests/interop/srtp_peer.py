"""A carrier that answers one call over SIP/TLS with SDES-SRTP and re-keys it mid-call.

Written with the standard library (ssl, socket, threads) and pylibsrtp, and none of
callswitch's own SIP or SDP code, so the server is checked against an independent
reading of RFC 3261 and RFC 4568. It answers the INVITE with RTP/SAVP and a key for the
first offered tag, streams a tone as SRTP and decrypts what it receives; after
``rekey_after`` seconds it sends a re-INVITE carrying a new key, moves its own sending
to that key, and takes up whatever key the answer names. A re-INVITE from the server
(moving it to another address and key, as onto rtpengine) is answered keeping its own
key (as baresip does): it sends to the new address and decrypts under the offered key.
It answers BYE with 200.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pylibsrtp

from .audio import sine, ulaw_decode, ulaw_encode

SUITE_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def srtp_session(suite: str, key: bytes, outbound: bool) -> pylibsrtp.Session:
    ssrc = pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    return pylibsrtp.Session(
        pylibsrtp.Policy(key=key, ssrc_type=ssrc, srtp_profile=SUITE_PROFILES[suite])
    )


def header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*)$", message, re.IGNORECASE | re.MULTILINE)
    assert match is not None, f"no {name} in {message[:300]!r}"
    return match.group(1).strip()


@dataclass
class Message:
    head: str
    body: str

    @property
    def first_line(self) -> str:
        return self.head.split("\r\n", 1)[0]


@dataclass
class RekeyingCarrier:
    cert: Path
    key: Path
    tone_hz: float
    rekey_after: float = 1.5
    port: int = 0
    heard: list[tuple[float, bytes]] = field(default_factory=list)  # (time, PCMU payload)
    rejected: int = 0  # SRTP packets from the server that did not authenticate
    rekey_answer: str = ""  # the server's SDP answer to our re-INVITE
    invite_sdp: str = ""
    rekeyed_at: float | None = None
    errors: list[str] = field(default_factory=list)
    moves: list[tuple[float, str]] = field(default_factory=list)  # (time, re-INVITE SDP)
    heard_from: list[tuple[float, int]] = field(default_factory=list)  # (time, source port)

    def __post_init__(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._tls = context
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", 0))
        self._rtp.settimeout(0.004)
        self._answered_at: float | None = None
        self._stop = threading.Event()
        self.ended = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(3)
        self._listener.close()
        self._rtp.close()

    # -- SIP over TLS

    def _accept(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                conn = self._tls.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.errors.append(f"TLS: {exc}")
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _messages(self, conn: ssl.SSLSocket):
        buffer = b""
        conn.settimeout(0.2)
        while not self._stop.is_set():
            while b"\r\n\r\n" in buffer:
                head, rest = buffer.split(b"\r\n\r\n", 1)
                length = int(header(head.decode(), "(?:Content-Length|l)") or 0)
                if len(rest) < length:
                    break
                buffer = rest[length:]
                yield Message(head.decode(), rest[:length].decode())
            try:
                data = conn.recv(65536)
            except TimeoutError:
                yield None  # a moment to send what is due (one thread per connection)
                continue
            except (ssl.SSLError, OSError):
                return
            if not data:
                return
            buffer += data

    def _serve(self, conn: ssl.SSLSocket) -> None:
        for message in self._messages(conn):
            try:
                if message is not None:
                    self._handle(conn, message)
                elif self._rekey_due():
                    self._reinvite(conn)
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def _rekey_due(self) -> bool:
        answered = self._answered_at
        return (
            answered is not None
            and self.rekeyed_at is None
            and time.monotonic() - answered >= self.rekey_after
        )

    def _handle(self, conn: ssl.SSLSocket, message: Message) -> None:
        first = message.first_line
        if first.startswith("INVITE ") and self.invite_sdp == "":
            self._answer_invite(conn, message)
        elif first.startswith("INVITE "):
            self._answer_reinvite(conn, message)
        elif first.startswith("BYE "):
            conn.sendall(self._response(message, "200 OK"))
            self.ended.set()
        elif first.startswith("SIP/2.0 200") and "INVITE" in header(message.head, "CSeq"):
            self._rekey_answered(conn, message)
        elif first.startswith(("ACK ", "SIP/2.0 1")):
            pass
        elif not first.startswith("SIP/2.0"):
            conn.sendall(self._response(message, "200 OK"))

    def _response(self, request: Message, status: str, body: str = "", tag: str = "") -> bytes:
        to = header(request.head, "To")
        if tag and ";tag=" not in to:
            to += f";tag={tag}"
        lines = [
            f"SIP/2.0 {status}",
            *[f"Via: {v.strip()}" for v in re.findall(r"^Via:\s*(.*)$", request.head, re.M | re.I)],
            f"From: {header(request.head, 'From')}",
            f"To: {to}",
            f"Call-ID: {header(request.head, 'Call-ID')}",
            f"CSeq: {header(request.head, 'CSeq')}",
            f"Contact: <sip:carrier@127.0.0.1:{self.port};transport=tls>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _sdp(self, version: int, tag: str, suite: str, key: bytes) -> str:
        inline = base64.b64encode(key).decode()
        port = self._rtp.getsockname()[1]
        return (
            f"v=0\r\no=carrier 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            f"t=0 0\r\nm=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=crypto:{tag} {suite} inline:{inline}\r\na=sendrecv\r\n"
        )

    def _answer_invite(self, conn: ssl.SSLSocket, invite: Message) -> None:
        self.invite_sdp = invite.body
        media = re.search(r"^m=audio (\d+) ", invite.body, re.M)
        offered = re.findall(r"^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", invite.body, re.M)
        assert media is not None and offered, invite.body
        tag, suite, their_key = offered[0]
        self._suite, self._tag = suite, tag
        self._inbound = srtp_session(suite, base64.b64decode(their_key), outbound=False)
        self._old_inbound: pylibsrtp.Session | None = None
        self._key = secrets.token_bytes(30)
        self._outbound = srtp_session(suite, self._key, outbound=True)
        self._server_rtp = ("127.0.0.1", int(media.group(1)))
        self._dialog = {
            "call_id": header(invite.head, "Call-ID"),
            "ours": f"tag-{uuid.uuid4().hex[:8]}",
            "from": header(invite.head, "From"),
            "to": header(invite.head, "To"),
            "contact": re.sub(r"^.*<([^>]+)>.*$", r"\1", header(invite.head, "Contact")),
        }
        self._version = 1
        answer = self._sdp(1, tag, suite, self._key)
        conn.sendall(self._response(invite, "200 OK", answer, tag=self._dialog["ours"]))
        self._answered_at = time.monotonic()
        media_thread = threading.Thread(target=self._media, daemon=True)
        self._threads.append(media_thread)
        media_thread.start()

    def _answer_reinvite(self, conn: ssl.SSLSocket, invite: Message) -> None:
        """The server moves us: its new address and key; we keep ours (RFC 4568 §7.1.4)."""
        media = re.search(r"^m=audio (\d+) ", invite.body, re.M)
        address = re.search(r"^c=IN IP4 (\S+)", invite.body, re.M)
        offered = re.findall(r"^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", invite.body, re.M)
        ours = [(tag, key) for tag, suite, key in offered if suite == self._suite]
        if media is None or address is None or not ours:
            conn.sendall(self._response(invite, "488 Not Acceptable Here"))
            return
        tag, key = ours[0]
        self._old_inbound = self._inbound
        self._inbound = srtp_session(self._suite, base64.b64decode(key), outbound=False)
        self._server_rtp = (address.group(1), int(media.group(1)))
        self._version += 1
        answer = self._sdp(self._version, tag, self._suite, self._key)
        conn.sendall(self._response(invite, "200 OK", answer))
        self.moves.append((time.monotonic(), invite.body))

    def _reinvite(self, conn: ssl.SSLSocket) -> None:
        """New key for our direction (RFC 4568 §7.1.4), offered in a re-INVITE."""
        dialog = self._dialog
        self._key = secrets.token_bytes(30)
        self._version += 1
        body = self._sdp(self._version, self._tag, self._suite, self._key)
        lines = [
            f"INVITE {dialog['contact']} SIP/2.0",
            f"Via: SIP/2.0/TLS 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:12]}",
            "Max-Forwards: 70",
            f"From: {dialog['to']};tag={dialog['ours']}",
            f"To: {dialog['from']}",
            f"Call-ID: {dialog['call_id']}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:carrier@127.0.0.1:{self.port};transport=tls>",
            "Content-Type: application/sdp",
            f"Content-Length: {len(body.encode())}",
        ]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
        # The offerer sends under its new key from now on; the answerer was told.
        self._outbound = srtp_session(self._suite, self._key, outbound=True)
        self.rekeyed_at = time.monotonic()

    def _rekey_answered(self, conn: ssl.SSLSocket, response: Message) -> None:
        dialog = self._dialog
        self.rekey_answer = response.body
        answered = re.findall(
            r"^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", response.body, re.M
        )
        assert len(answered) == 1 and answered[0][0] == self._tag, response.body
        _, suite, key = answered[0]
        new_inbound = srtp_session(suite, base64.b64decode(key), outbound=False)
        self._old_inbound, self._inbound = self._inbound, new_inbound
        to_tag = re.search(r";tag=([^;\s]+)", header(response.head, "To"))
        lines = [
            f"ACK {dialog['contact']} SIP/2.0",
            f"Via: SIP/2.0/TLS 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:12]}",
            "Max-Forwards: 70",
            f"From: {dialog['to']};tag={dialog['ours']}",
            f"To: {header(response.head, 'To')}" if to_tag else f"To: {dialog['from']}",
            f"Call-ID: {dialog['call_id']}",
            "CSeq: 1 ACK",
            "Content-Length: 0",
        ]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    # -- RTP

    def _media(self) -> None:
        tone = ulaw_encode(sine(self.tone_hz, 60.0, amplitude=0.3))
        start = time.monotonic()
        sequence, ssrc = secrets.randbits(16), secrets.randbits(32)
        sent = 0
        while not self._stop.is_set() and not self.ended.is_set():
            now = time.monotonic()
            if now >= start + sent * 0.02:
                payload = tone[sent * 160 : (sent + 1) * 160]
                rtp = (
                    bytes([0x80, 0])
                    + ((sequence + sent) & 0xFFFF).to_bytes(2, "big")
                    + (sent * 160).to_bytes(4, "big")
                    + ssrc.to_bytes(4, "big")
                    + payload
                )
                self._rtp.sendto(self._outbound.protect(rtp), self._server_rtp)
                sent += 1
            self._receive()

    def _receive(self) -> None:
        try:
            data, source = self._rtp.recvfrom(2048)
        except TimeoutError:
            return
        if len(data) < 12 or 200 <= data[1] <= 204:  # RTCP (SRTCP): not checked here
            return
        for session in (self._inbound, self._old_inbound):
            if session is None:
                continue
            try:
                plain = session.unprotect(data)
            except pylibsrtp.Error:
                continue
            self.heard.append((time.monotonic(), plain[12:]))
            self.heard_from.append((time.monotonic(), source[1]))
            return
        self.rejected += 1

    def decoded_after(self, moment: float):
        return ulaw_decode(b"".join(p for t, p in self.heard if t >= moment))
