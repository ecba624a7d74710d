"""A few raw SIP messages over plain sockets, for input SIPp cannot send.

Just enough SIP to send an OPTIONS and recognise its answer; every wait is
bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from dataclasses import dataclass

from .harness import LOOPBACK


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    raw: bytes


def parse_response(data: bytes) -> Response | None:
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not m:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return Response(int(m.group(1)), m.group(2), headers, data)


def options(local: tuple[str, int], server: tuple[str, int], transport: str) -> tuple[bytes, str]:
    """An OPTIONS request and its Call-ID."""
    call_id = f"{uuid.uuid4().hex}@{LOOPBACK}"
    branch = f"z9hG4bK-{uuid.uuid4().hex[:16]}"
    msg = (
        f"OPTIONS sip:{server[0]}:{server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:interop@{local[0]}:{local[1]}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{server[0]}:{server[1]}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    )
    return msg.encode(), call_id


def udp_options(server: tuple[str, int], timeout: float = 3.0) -> Response | None:
    """Send OPTIONS over UDP (retransmitting every 0.5 s) and return the
    final response with its Call-ID, or None after `timeout`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        msg, call_id = options(sock.getsockname(), server, "UDP")
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_send:
                sock.sendto(msg, server)
                next_send = now + 0.5
            sock.settimeout(max(0.01, min(next_send, deadline) - time.monotonic()))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            resp = parse_response(data)
            if resp and resp.status >= 200 and resp.headers.get("call-id") == call_id:
                return resp
    return None


def tcp_options(server: tuple[str, int], timeout: float = 3.0) -> Response | None:
    """Send OPTIONS on a new TCP connection; the final response or None."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(server, timeout=timeout) as sock:
        msg, call_id = options(sock.getsockname(), server, "TCP")
        sock.sendall(msg)
        buf = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65535)
            except TimeoutError:
                break
            if not chunk:
                break
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                resp = parse_response(head + b"\r\n\r\n")
                length = 0
                if resp is not None:
                    with contextlib.suppress(ValueError):
                        length = int(resp.headers.get("content-length", "0"))
                buf = rest[length:]
                if resp and resp.status >= 200 and resp.headers.get("call-id") == call_id:
                    return resp
    return None


def udp_exchange(server: tuple[str, int], datagrams: list[bytes], wait: float = 0.3) -> list[bytes]:
    """Send datagrams from one socket and collect whatever comes back within `wait` s."""
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        for d in datagrams:
            sock.sendto(d, server)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(replies) < 10 * len(datagrams) + 10:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                break
            replies.append(data)
    return replies


def tcp_exchange(server: tuple[str, int], data: bytes, wait: float = 0.5) -> tuple[bytes, bool]:
    """Send bytes on a new TCP connection, half-close nothing, read what comes
    back within `wait` s. Returns (bytes read, whether the server closed)."""
    buf = b""
    closed = False
    with socket.create_connection(server, timeout=5) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return buf, True
        except TimeoutError:
            return buf, False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(buf) < 1 << 20:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65535)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
    return buf, closed


def statuses(data: list[bytes] | bytes) -> list[int]:
    """Status codes of the responses in datagrams or in a TCP byte stream."""
    chunks = data if isinstance(data, list) else re.split(rb"(?=SIP/2\.0 \d{3})", data)
    out = []
    for chunk in chunks:
        resp = parse_response(chunk)
        if resp is not None:
            out.append(resp.status)
    return out
