"""A classic libpcap file writer (and reader) for RTP over UDP/IPv4/Ethernet,
and a live capture on the loopback interface.

SIPp's `play_pcap_audio` replays the UDP payloads of such a file with the
capture's timing, rewriting only addresses and ports, so a file written here is
a precise, known signal to send into the server. `LoopbackCapture` records what
really crosses `lo` (an AF_PACKET socket: root), to check what is on the wire.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int = 0) -> bytes:
    """An Ethernet II frame carrying an IPv4/UDP datagram (UDP checksum 0 = none)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        ident & 0xFFFF,
        0x4000,  # don't fragment
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(src[0]),
        socket.inet_aton(dst[0]),
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ether = (
        b"\x02\x00\x00\x00\x00\x02"
        + b"\x02\x00\x00\x00\x00\x01"
        + struct.pack("!H", ETHERTYPE_IPV4)
    )
    return ether + ip + udp


def write_pcap(
    path: Path,
    datagrams: Iterable[tuple[float, bytes]],
    *,
    src: tuple[str, int] = ("127.0.0.1", 30000),
    dst: tuple[str, int] = ("127.0.0.1", 30002),
    start: float = 1_700_000_000.0,
) -> int:
    """Write UDP payloads with their send times (seconds from the start) as a
    pcap capture, all from `src` to `dst`; return how many were written."""
    count = 0
    with open(path, "wb") as f:
        f.write(_GLOBAL.pack(PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for offset, payload in datagrams:
            frame = udp_frame(payload, src, dst, ident=count)
            when = start + offset
            sec = int(when)
            usec = round((when - sec) * 1e6)
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            f.write(_RECORD.pack(sec, usec, len(frame), len(frame)))
            f.write(frame)
            count += 1
    return count


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    """(time, UDP payload) of each IPv4/UDP packet of an Ethernet capture."""
    data = Path(path).read_bytes()
    magic, _major, _minor, _tz, _sig, _snap, link = _GLOBAL.unpack_from(data)
    if magic != PCAP_MAGIC or link != LINKTYPE_ETHERNET:
        raise ValueError(f"not a little-endian Ethernet pcap: magic {magic:#x} link {link}")
    out = []
    offset = _GLOBAL.size
    while offset + _RECORD.size <= len(data):
        sec, usec, incl, _orig = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        frame = data[offset : offset + incl]
        offset += incl
        if struct.unpack_from("!H", frame, 12)[0] != ETHERTYPE_IPV4:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != socket.IPPROTO_UDP:
            continue
        (udp_len,) = struct.unpack_from("!H", ip, ihl + 4)
        out.append((sec + usec / 1e6, bytes(ip[ihl + 8 : ihl + udp_len])))
    return out


class LoopbackCapture:
    """UDP payloads to a port range on `lo`, read with an AF_PACKET socket (root)."""

    def __init__(self, ports: tuple[int, int], max_seconds: float = 60.0) -> None:
        self.ports = ports
        self.payloads: list[bytes] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._max_seconds = max_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self._max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                frame = self._sock.recv(65535)
            except TimeoutError:
                continue
            if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
                continue
            header = (frame[14] & 0x0F) * 4
            _, dport, length, _ = struct.unpack_from("!HHHH", frame, 14 + header)
            if self.ports[0] <= dport <= self.ports[1]:
                self.payloads.append(frame[14 + header + 8 : 14 + header + length])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
