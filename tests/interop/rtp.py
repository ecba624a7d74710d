"""RTP packets (RFC 3550 section 5.1) and a UDP sink that records them.

The sink is a socket the test owns: its port goes into the SDP that SIPp sends,
so whatever RTP the server sends to "SIPp's" media address arrives here.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass

from .harness import LOOPBACK

_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet; `arrival` is the receiver's monotonic clock (0 when built)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    arrival: float = 0.0

    @classmethod
    def parse(cls, data: bytes, arrival: float = 0.0) -> RtpPacket:
        if len(data) < 12:
            raise ValueError(f"RTP packet of {len(data)} bytes is shorter than its header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise ValueError(f"RTP version {b0 >> 6}, expected 2")
        offset = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension
            if len(data) < offset + 4:
                raise ValueError("truncated RTP header extension")
            (words,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * words
        end = len(data)
        if b0 & 0x20:  # padding: last byte says how much
            end -= data[-1]
        if end < offset:
            raise ValueError("RTP padding or extension longer than the packet")
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80), arrival)

    def serialize(self) -> bytes:
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        return (
            _HEADER.pack(0x80, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
            + self.payload
        )


class RtpSink:
    """A UDP socket on 127.0.0.1 that records every datagram in a thread.

    Bounded: it keeps at most `max_packets` and stops by itself after
    `max_seconds`, so a test can never hang on it or fill memory.
    """

    def __init__(self, max_packets: int = 20000, max_seconds: float = 120.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self._max_packets = max_packets
        self._deadline = time.monotonic() + max_seconds
        self._datagrams: list[tuple[float, bytes, tuple[str, int]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                break
            with self._lock:
                if len(self._datagrams) < self._max_packets:
                    self._datagrams.append((time.monotonic(), data, addr))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RtpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self) -> int:
        with self._lock:
            return len(self._datagrams)

    def datagrams(self) -> list[tuple[float, bytes, tuple[str, int]]]:
        with self._lock:
            return list(self._datagrams)

    def packets(self) -> list[RtpPacket]:
        """Every datagram that parses as RTP, in arrival order (RTCP left out)."""
        out = []
        for arrival, data, _addr in self.datagrams():
            if len(data) >= 2 and 192 <= data[1] <= 223:
                continue  # RTCP (RFC 5761 section 4)
            with contextlib.suppress(ValueError):
                out.append(RtpPacket.parse(data, arrival))
        return out

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until `count` datagrams have arrived or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= count:
                return True
            time.sleep(0.02)
        return self.count() >= count

    def wait_quiet(self, quiet: float, timeout: float) -> bool:
        """Wait until nothing has arrived for `quiet` seconds (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dgrams = self.datagrams()
            last = dgrams[-1][0] if dgrams else 0.0
            if time.monotonic() - last >= quiet:
                return True
            time.sleep(0.05)
        return False
