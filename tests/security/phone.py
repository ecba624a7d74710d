"""A bare SIP phone over UDP for the attacks: it calls, answers, and sends what it likes.

Just enough of RFC 3261 for one dialog at a time: INVITE (retransmitted until
answered), ACK, requests inside the dialog (REFER, BYE) and answers 200 to every
request the node sends it (NOTIFY, BYE, a callee's INVITE). Every wait is
bounded by a deadline; the socket is bound to the address the test chooses
(127.0.0.2…, so the node sees an outsider's source address).
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class Message:
    first_line: str
    headers: list[tuple[str, str]]
    body: bytes
    source: tuple[str, int]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def status(self) -> int | None:
        match = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str | None:
        return None if self.status is not None else self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse(data: bytes, source: tuple[str, int]) -> Message:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return Message(lines[0], headers, body, source)


def sdp(host: str, rtp_port: int, direction: str = "sendrecv") -> bytes:
    return (
        f"v=0\r\no=phone 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    ).encode()


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    target: str  # the remote Contact: our in-dialog Request-URI
    cseq: int = 1
    route: list[str] = field(default_factory=list)
    invite_branch: str = ""  # a non-2xx answer's ACK reuses the INVITE's branch


class Phone:
    """One UDP SIP phone; a thread answers the node's requests and queues its answers."""

    def __init__(self, host: str = "127.0.0.1", user: str = "phone") -> None:
        self.host, self.user = host, user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))  # where the node's RTP goes (and is ignored)
        self.received: list[Message] = []
        self.dialog: Dialog | None = None  # the dialog of a call this phone answered
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.port}>"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        self.rtp.close()

    def __enter__(self) -> Phone:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- receiving

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            message = parse(data, source)
            if message.method not in (None, "ACK"):
                self._answer(message)
            with self._cond:
                self.received.append(message)
                self._cond.notify_all()

    def _answer(self, request: Message) -> None:
        """200 to every request; to an INVITE with our SDP and a tag (we are called)."""
        to = request.header("To") or ""
        body = b""
        extra = ""
        if request.method == "INVITE":
            known = self.dialog is not None and self.dialog.call_id == request.header("Call-ID")
            if ";tag=" not in to:  # a retransmission gets the same tag
                to += f";tag={self.dialog.local_tag if known else uuid.uuid4().hex[:8]}"
            body = sdp(self.host, self.rtp.getsockname()[1])
            extra = f"Contact: {self.contact}\r\nContent-Type: application/sdp\r\n"
            if self.dialog is None:
                self.dialog = Dialog(
                    call_id=request.header("Call-ID") or "",
                    local_tag=to.rsplit(";tag=", 1)[1],
                    remote_tag=_tag(request.header("From") or ""),
                    local_uri=to.split(";tag=")[0],
                    remote_uri=(request.header("From") or "").split(";tag=")[0],
                    target=_uri(request.header("Contact") or ""),
                    cseq=100,
                )
        vias = "".join(f"Via: {v}\r\n" for v in request.all("Via"))
        response = (
            f"SIP/2.0 200 OK\r\n{vias}From: {request.header('From')}\r\nTo: {to}\r\n"
            f"Call-ID: {request.header('Call-ID')}\r\nCSeq: {request.header('CSeq')}\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock.sendto(response, request.source)

    def wait(self, predicate, timeout: float) -> Message | None:
        """The first message received that satisfies ``predicate``, within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((m for m in self.received if predicate(m)), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    return found
                self._cond.wait(left)

    def requests(self, method: str) -> list[Message]:
        with self._cond:
            return [m for m in self.received if m.method == method]

    # -- calling

    def call(self, server: tuple[str, int], user: str, timeout: float = 15.0) -> Dialog | None:
        """INVITE ``user`` at the node; after a 2xx, ACK and return the dialog (None on a
        final failure or no final answer within ``timeout``)."""
        final, dialog = self.invite(server, user, timeout=timeout)
        if final is None:
            return None
        self.ack(server, dialog, final)
        return dialog if final.status < 300 else None

    def invite(
        self,
        server: tuple[str, int],
        user: str,
        *,
        media: tuple[str, int] | None = None,
        direction: str = "sendrecv",
        timeout: float = 15.0,
    ) -> tuple[Message | None, Dialog]:
        """INVITE ``user`` at the node with an SDP naming ``media`` (default: this
        phone's RTP socket; any address will do: a forged victim's), retransmitted
        until answered; the final answer (None within ``timeout``), not yet ACKed."""
        call_id, tag, branch = uuid.uuid4().hex, uuid.uuid4().hex[:8], _branch()
        uri = f"sip:{user}@{server[0]}:{server[1]}"
        local_uri = f"<sip:{self.user}@{self.host}>"
        host, port = media or (self.host, self.rtp.getsockname()[1])
        body = sdp(host, port, direction)
        invite = (
            f"INVITE {uri} SIP/2.0\r\n{self._via(branch)}Max-Forwards: 70\r\n"
            f"From: {local_uri};tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: {self.contact}\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        dialog = Dialog(call_id, tag, "", local_uri, f"<{uri}>", uri, invite_branch=branch)
        final = self._until_final(invite, server, branch, timeout)
        if final is not None:
            dialog.remote_tag = _tag(final.header("To") or "")
            if final.status < 300:
                dialog.target = _uri(final.header("Contact") or "") or uri
                dialog.route = list(reversed(final.all("Record-Route")))
        return final, dialog

    def ack(self, server: tuple[str, int], dialog: Dialog, final: Message) -> None:
        """ACK an INVITE's final answer: a 2xx end to end, anything else hop by hop."""
        to = final.header("To") or ""
        cseq = (final.header("CSeq") or "1").split()[0]
        if final.status >= 300:
            uri, branch = dialog.remote_uri.strip("<>"), dialog.invite_branch
        else:
            uri, branch = dialog.target, _branch()
        routes = "".join(f"Route: {r}\r\n" for r in dialog.route if final.status < 300)
        ack = (
            f"ACK {uri} SIP/2.0\r\n{self._via(branch)}Max-Forwards: 70\r\n{routes}"
            f"From: {dialog.local_uri};tag={dialog.local_tag}\r\nTo: {to}\r\n"
            f"Call-ID: {dialog.call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
        )
        self.sock.sendto(ack.encode(), server)

    def reinvite(
        self,
        server: tuple[str, int],
        dialog: Dialog,
        direction: str,
        media: tuple[str, int] | None = None,
    ) -> int | None:
        """A re-INVITE inside ``dialog`` offering ``direction`` (e.g. inactive: hold),
        ACKed when answered 2xx; its final status."""
        host, port = media or (self.host, self.rtp.getsockname()[1])
        status, final = self._in_dialog(dialog, "INVITE", server, body=sdp(host, port, direction))
        if final is not None:
            self.ack(server, dialog, final)
        return status

    def wait_bye(self, dialog: Dialog, timeout: float) -> float | None:
        """When the node's BYE for ``dialog`` came (answered 200 by the thread), or None."""
        bye = self.wait(
            lambda m: m.method == "BYE" and m.header("Call-ID") == dialog.call_id, timeout
        )
        return None if bye is None else bye.received_at

    def request(
        self,
        dialog: Dialog,
        method: str,
        server: tuple[str, int],
        headers: str = "",
        timeout: float = 5.0,
    ) -> int | None:
        """Send ``method`` inside ``dialog``; its final status (None: no answer; a
        ``timeout`` of 0 sends once and waits for nothing)."""
        return self._in_dialog(dialog, method, server, headers, timeout=timeout)[0]

    def _in_dialog(
        self,
        dialog: Dialog,
        method: str,
        server: tuple[str, int],
        headers: str = "",
        body: bytes = b"",
        timeout: float = 5.0,
    ) -> tuple[int | None, Message | None]:
        dialog.cseq += 1
        branch = _branch()
        routes = "".join(f"Route: {r}\r\n" for r in dialog.route)
        if body:
            headers += "Content-Type: application/sdp\r\n"
        message = (
            f"{method} {dialog.target} SIP/2.0\r\n{self._via(branch)}Max-Forwards: 70\r\n"
            f"{routes}From: {dialog.local_uri};tag={dialog.local_tag}\r\n"
            f"To: {dialog.remote_uri};tag={dialog.remote_tag}\r\nCall-ID: {dialog.call_id}\r\n"
            f"CSeq: {dialog.cseq} {method}\r\nContact: {self.contact}\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        if timeout <= 0:
            self.sock.sendto(message, server)
            return None, None
        final = self._until_final(message, server, branch, timeout)
        return (None, None) if final is None else (final.status, final)

    def _until_final(
        self, message: bytes, server: tuple[str, int], branch: str, timeout: float
    ) -> Message | None:
        """Send ``message`` every 0.5 s until the node answers it at all (Timer A/E),
        then wait for its final answer, within ``timeout``."""
        deadline = time.monotonic() + timeout
        sent_at = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - sent_at > 0.5 and not self._provisional(branch):
                self.sock.sendto(message, server)
                sent_at = time.monotonic()
            final = self.wait(
                lambda m: _branch_of(m) == branch and m.status is not None and m.status >= 200,
                min(0.25, max(0.0, deadline - time.monotonic())),
            )
            if final is not None:
                return final
        return None

    def register(self, server: tuple[str, int], password: str, timeout: float = 5.0) -> int | None:
        """REGISTER this phone's user at the node (answering the digest challenge, MD5
        with qop=auth); the final status."""
        aor = f"sip:{self.user}@{server[0]}:{server[1]}"
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        status, challenge = self._register(server, aor, call_id, tag, 1, "", timeout)
        if status != 401 or challenge is None:
            return status
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        realm, nonce, cnonce, nc = (
            fields["realm"],
            fields["nonce"],
            uuid.uuid4().hex[:8],
            "00000001",
        )
        ha1 = _md5(f"{self.user}:{realm}:{password}")
        ha2 = _md5(f"REGISTER:sip:{server[0]}:{server[1]}")
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        authorization = (
            f'Authorization: Digest username="{self.user}", realm="{realm}", nonce="{nonce}", '
            f'uri="sip:{server[0]}:{server[1]}", response="{response}", algorithm=MD5, '
            f'qop=auth, nc={nc}, cnonce="{cnonce}"\r\n'
        )
        return self._register(server, aor, call_id, tag, 2, authorization, timeout)[0]

    def _register(self, server, aor, call_id, tag, cseq, extra, timeout):
        branch = _branch()
        message = (
            f"REGISTER sip:{server[0]}:{server[1]} SIP/2.0\r\n{self._via(branch)}"
            f"Max-Forwards: 70\r\nFrom: <{aor}>;tag={tag}\r\nTo: <{aor}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: {self.contact}\r\n"
            f"Expires: 300\r\n{extra}Content-Length: 0\r\n\r\n"
        ).encode()
        self.sock.sendto(message, server)
        final = self.wait(
            lambda m: _branch_of(m) == branch and m.status is not None and m.status >= 200,
            timeout,
        )
        if final is None:
            return None, None
        challenges = [
            c for c in final.all("WWW-Authenticate") if "MD5" in c or "algorithm" not in c
        ]
        return final.status, (challenges[0] if challenges else None)

    def _via(self, branch: str) -> str:
        return f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport\r\n"

    def _provisional(self, branch: str) -> bool:
        with self._cond:
            return any(_branch_of(m) == branch and m.status for m in self.received)


class RawCall:
    """One call from ``local_ip`` to ``user`` at ``server`` whose SDP names ``media``
    (an address that need not be ours: the forged victim), step by step: INVITE, then
    ACK or not, re-INVITE, the node's BYE."""

    def __init__(
        self,
        server: tuple[str, int],
        user: str,
        media: tuple[str, int],
        *,
        local_ip: str = "127.0.0.1",
    ) -> None:
        self.server, self.user, self.media = server, user, media
        self.phone = Phone(local_ip, "attacker")
        self.final: Message | None = None
        self.dialog: Dialog | None = None

    def invite(self, direction: str = "sendrecv", timeout: float = 10.0) -> Message | None:
        self.final, self.dialog = self.phone.invite(
            self.server, self.user, media=self.media, direction=direction, timeout=timeout
        )
        return self.final

    def ack(self) -> None:
        assert self.dialog is not None and self.final is not None
        self.phone.ack(self.server, self.dialog, self.final)

    def reinvite(self, direction: str) -> int | None:
        assert self.dialog is not None
        return self.phone.reinvite(self.server, self.dialog, direction, self.media)

    def wait_bye(self, timeout: float) -> float | None:
        assert self.dialog is not None
        return self.phone.wait_bye(self.dialog, timeout)

    def bye(self) -> None:
        if self.dialog is not None and self.final is not None and self.final.status < 300:
            self.phone.request(self.dialog, "BYE", self.server, timeout=0)

    def close(self) -> None:
        self.phone.close()


class Listener:
    """A UDP socket where a forbidden INVITE would arrive (127.0.0.9, say)."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]

    def received(self, wait: float) -> list[bytes]:
        """Whatever came within ``wait`` seconds (an INVITE from the node comes at once)."""
        got = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recvfrom(65535)[0])
            except (TimeoutError, OSError):
                break
        return got

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _branch() -> str:
    return f"z9hG4bK-{uuid.uuid4().hex[:16]}"


def _branch_of(message: Message) -> str | None:
    via = message.header("Via") or ""
    match = re.search(r"branch=([^;,\s]+)", via)
    return match.group(1) if match else None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _tag(value: str) -> str:
    match = re.search(r";tag=([^;>\s]+)", value)
    return match.group(1) if match else ""


def _uri(value: str) -> str:
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value.split(";")[0].strip()
