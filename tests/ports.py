"""Free loopback ports for the servers and peers tests start.

Listening ports come from below the kernel's ephemeral range (32768-60999
here): a port the kernel hands out is free again the moment the probe
closes, and the next outgoing connection anywhere on the machine may take it
before the process it was meant for binds it.
"""

from __future__ import annotations

import os
import random
import socket

__all__ = ["LOOPBACK", "free_port", "free_port_block", "free_rtp_range"]

LOOPBACK = "127.0.0.1"

# Listening ports for servers and peers; free_port_block takes 20000-32000 and
# the RTP ranges sit higher, so the three do not meet.
_LISTEN_PORTS = (10000, 20000)


def _worker_share(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's own slice of [low, high): workers running at
    once never probe the same port, so one cannot take the port another just
    found free (outside xdist: the whole range)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count <= 1:
        return low, high
    index = int(worker[2:]) % count
    width = (high - low) // count
    return low + index * width, low + (index + 1) * width


def _udp_and_tcp_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def free_port(*, udp_and_tcp: bool = True, avoid: set[int] | None = None) -> int:
    """A loopback port below the ephemeral range, free now for UDP (and TCP)."""
    avoid = avoid or set()
    rng = random.Random()
    low, high = _worker_share(*_LISTEN_PORTS)
    for _ in range(200):
        port = rng.randrange(low, high)
        if port in avoid:
            continue
        if _udp_and_tcp_free(port) if udp_and_tcp else _udp_free(port):
            return port
    raise RuntimeError(f"no free port in {low}-{high} on 127.0.0.1 after 200 tries")


def free_port_block(count: int, *, low: int = 20000, high: int = 32000) -> int:
    """Base of `count` consecutive UDP ports that are free now (below the
    ephemeral range, so the kernel will not hand them out behind our back)."""
    low, high = _worker_share(low, high)
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(low, high - count) & ~1
        if all(_udp_and_tcp_free(base + k) for k in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports in {low}-{high}")


def free_rtp_range(size: int = 200, *, low: int = 40000, high: int = 59000) -> tuple[int, int]:
    """An even-based UDP range for the server's RTP pool whose probes are free."""
    low, high = _worker_share(low, high)
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(low, high - size) & ~1
        probes = [base, base + 1, base + size // 2, base + size - 2, base + size - 1]
        if all(_udp_free(p) for p in probes):
            return base, base + size - 1
    raise RuntimeError(f"no free RTP range of {size} ports in {low}-{high}")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True
