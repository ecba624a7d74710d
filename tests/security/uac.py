"""A raw SIP caller over UDP for the media attacks: INVITE with any SDP address,
ACK or not, re-INVITE to hold, answer the server's BYE. Every wait is bounded."""

from __future__ import annotations

import re
import socket
import time
import uuid

from tests.interop.sipclient import Response, parse_response


def sdp(address: str, port: int, direction: str = "sendrecv") -> str:
    return (
        "v=0\r\n"
        f"o=- 1 1 IN IP4 {address}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {address}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n"
    )


class RawCall:
    """One call from ``local_ip`` to ``user`` at ``server`` whose SDP names
    ``media`` (an address that need not be ours: the forged victim)."""

    def __init__(
        self,
        server: tuple[str, int],
        user: str,
        media: tuple[str, int],
        *,
        local_ip: str = "127.0.0.1",
    ) -> None:
        self.server = server
        self.user = user
        self.media = media
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.local = self.sock.getsockname()
        self.call_id = f"{uuid.uuid4().hex}@{local_ip}"
        self.from_tag = uuid.uuid4().hex[:8]
        self.to_header = f"<sip:{user}@{server[0]}:{server[1]}>"
        self.remote_target = f"sip:{user}@{server[0]}:{server[1]}"
        self.cseq = 1
        self.requests: list[bytes] = []  # requests the server sent us (BYE)

    def close(self) -> None:
        self.sock.close()

    def _via(self) -> str:
        branch = f"z9hG4bK-{uuid.uuid4().hex[:16]}"
        return f"SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch={branch};rport"

    def _request(self, method: str, uri: str, cseq: int, body: str = "", via: str = "") -> bytes:
        head = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: {via or self._via()}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:attacker@{self.local[0]}:{self.local[1]}>;tag={self.from_tag}\r\n"
            f"To: {self.to_header}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:attacker@{self.local[0]}:{self.local[1]}>\r\n"
        )
        if body:
            head += "Content-Type: application/sdp\r\n"
        return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()

    def invite(self, direction: str = "sendrecv", timeout: float = 10.0) -> Response | None:
        """INVITE (retransmitted until a response comes) and wait for its final response."""
        body = sdp(self.media[0], self.media[1], direction)
        message = self._request("INVITE", self.remote_target, self.cseq, body)
        return self._transaction(message, "INVITE", timeout)

    def reinvite(self, direction: str, timeout: float = 10.0) -> Response | None:
        self.cseq += 1
        body = sdp(self.media[0], self.media[1], direction)
        response = self._transaction(
            self._request("INVITE", self.remote_target, self.cseq, body), "INVITE", timeout
        )
        if response is not None and response.status == 200:
            self.sock.sendto(self._request("ACK", self.remote_target, self.cseq), self.server)
        return response

    def _transaction(self, message: bytes, method: str, timeout: float) -> Response | None:
        deadline = time.monotonic() + timeout
        provisional = False
        next_send = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not provisional and now >= next_send:
                self.sock.sendto(message, self.server)
                next_send = now + 0.5
            response = self._receive(min(0.1, deadline - now))
            if response is None or f"{self.cseq} {method}" not in response.headers.get("cseq", ""):
                continue
            if response.status < 200:
                provisional = True
                continue
            self._learn_dialog(response)
            return response
        return None

    def _learn_dialog(self, response: Response) -> None:
        to = response.headers.get("to", "")
        if "tag=" in to:
            self.to_header = to
        contact = re.search(r"<([^>]+)>", response.headers.get("contact", ""))
        if contact:
            self.remote_target = contact.group(1)

    def _receive(self, timeout: float) -> Response | None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(65535)
        except (TimeoutError, OSError):
            return None
        if data.startswith(b"SIP/2.0"):
            return parse_response(data)
        self._answer_request(data)
        return None

    def _answer_request(self, data: bytes) -> None:
        self.requests.append(data)
        head = data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace").split("\r\n")
        if head[0].startswith(("ACK", "INVITE")):
            return
        keep = [line for line in head[1:] if line.split(":")[0].lower() in _ECHOED]
        reply = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        self.sock.sendto(reply.encode(), self.server)

    def ack(self) -> None:
        self.sock.sendto(self._request("ACK", self.remote_target, self.cseq), self.server)

    def wait_bye(self, timeout: float) -> float | None:
        """Wait for the server's BYE (answered 200); when it came, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.startswith(b"BYE ") for r in self.requests):
                return time.monotonic()
            self._receive(min(0.1, deadline - time.monotonic()))
        return time.monotonic() if any(r.startswith(b"BYE ") for r in self.requests) else None

    def bye(self) -> None:
        self.cseq += 1
        self.sock.sendto(self._request("BYE", self.remote_target, self.cseq), self.server)


_ECHOED = {"via", "from", "to", "call-id", "cseq"}
