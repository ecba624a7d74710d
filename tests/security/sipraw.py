"""Raw SIP over UDP from a chosen loopback address, as an outsider sends it.

``Phone`` speaks just enough REGISTER/OPTIONS/INVITE to drive the registrar and
the guards; every wait is bounded. ``flood`` sends many datagrams at a bounded
rate and counts the answers.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
import uuid

from sip.auth import Challenge, Credentials, authorize
from sip.message import Response
from sip.parser import parse_message

from .phone import sdp

_seq = itertools.count(1)


def register_bytes(
    server: tuple[str, int],
    local: tuple[str, int],
    user: str,
    *,
    contact: str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    authorization: str | None = None,
    expires: int | None = 300,
) -> bytes:
    host, port = local
    lines = [
        f"REGISTER sip:{server[0]}:{server[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex[:16]};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{server[0]}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:{user}@{server[0]}>",
        f"Call-ID: {call_id or uuid.uuid4().hex}",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact is not None:
        lines.append(f"Contact: <{contact}>")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def invite_bytes(server: tuple[str, int], local: tuple[str, int], user: str) -> bytes:
    host, port = local
    body = sdp(host, 9)
    head = (
        f"INVITE sip:{user}@{server[0]}:{server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:attacker@{host}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{user}@{server[0]}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:attacker@{host}:{port}>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def options_bytes(server: tuple[str, int], local: tuple[str, int]) -> bytes:
    host, port = local
    return (
        f"OPTIONS sip:{server[0]}:{server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{host}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{server[0]}:{server[1]}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Phone:
    """A UDP SIP endpoint bound to ``address`` (127.0.0.x) talking to ``server``."""

    def __init__(self, server: tuple[str, int], address: str = "127.0.0.1") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.local = self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Phone:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def exchange(self, data: bytes, timeout: float = 5.0) -> Response:
        """Send ``data`` (again every 0.5 s) until a final response arrives."""
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send:
                self.sock.sendto(data, self.server)
                next_send = now + 0.5
            self.sock.settimeout(max(0.01, min(next_send, deadline) - now))
            try:
                reply, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = parse_message(reply)
            if isinstance(message, Response) and message.status >= 200:
                return message
        raise AssertionError(f"no final response within {timeout} s")

    def options(self) -> Response:
        return self.exchange(options_bytes(self.server, self.local))

    def register(
        self, user: str, password: str, *, contact: str | None = None, call_id: str | None = None
    ) -> tuple[Response, Credentials | None, bytes]:
        """Challenge and answer; returns the final response, the credentials sent and
        the authorized REGISTER as sent (for a replay)."""
        call_id = call_id or uuid.uuid4().hex
        cseq = next(_seq)
        first = self.exchange(
            register_bytes(
                self.server, self.local, user, contact=contact, call_id=call_id, cseq=cseq
            )
        )
        if first.status != 401:
            return first, None, b""
        challenge = Challenge.parse(first.headers.get_lines("WWW-Authenticate")[0])
        credentials = authorize(
            challenge,
            method="REGISTER",
            uri=f"sip:{self.server[0]}:{self.server[1]}",
            username=user,
            password=password,
        )
        data = register_bytes(
            self.server,
            self.local,
            user,
            contact=contact,
            call_id=call_id,
            cseq=next(_seq),
            authorization=str(credentials),
        )
        return self.exchange(data), credentials, data


def flood(
    server: tuple[str, int],
    address: str,
    make: callable,
    *,
    count: int,
    rate: float,
    on_tick: callable | None = None,
) -> dict[int, int]:
    """Send ``count`` datagrams ``make(local)`` from ``address`` at ``rate`` per second;
    returns how many responses of each status came back (drained for 1 s after).
    ``on_tick()`` runs about every 0.5 s meanwhile (to probe the node)."""
    statuses: dict[int, int] = {}
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind((address, 0))
        sock.setblocking(False)
        local = sock.getsockname()
        start = time.monotonic()
        next_tick = start + 0.5
        sent = 0

        def drain() -> None:
            while True:
                try:
                    reply = sock.recv(65535)
                except BlockingIOError:
                    return
                status = int(reply[8:11]) if reply.startswith(b"SIP/2.0 ") else 0
                statuses[status] = statuses.get(status, 0) + 1

        while sent < count:
            due = min(count, int((time.monotonic() - start) * rate) + 1)
            while sent < due:
                with contextlib.suppress(BlockingIOError):
                    sock.sendto(make(local), server)
                sent += 1
            drain()
            if on_tick is not None and time.monotonic() >= next_tick:
                on_tick()
                next_tick = time.monotonic() + 0.5
            time.sleep(0.002)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            drain()
            time.sleep(0.01)
    return statuses
