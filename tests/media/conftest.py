"""Shared fixtures for the media tests: two RTP sessions talking over loopback."""

from __future__ import annotations

import socket

import pytest

from media.clock import MediaClock
from media.ports import PortPool
from media.sdp import PCMU, TELEPHONE_EVENT
from media.session import RtpSession


def free_range(size: int = 20) -> tuple[int, int]:
    """A run of ports that are free now (bound and released at once)."""
    for base in range(41000, 59000, 97):
        socks = []
        try:
            for port in range(base, base + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base, base + size - 1
    raise RuntimeError("no free port range")


@pytest.fixture
async def pair():
    """Two PCMU sessions with telephone-event, each sending to the other."""
    clock = MediaClock()
    pool = PortPool(*free_range())
    a = await RtpSession.bind("127.0.0.1", pool, clock)
    b = await RtpSession.bind("127.0.0.1", pool, clock)
    a.configure(PCMU, ("127.0.0.1", b.port), dtmf=TELEPHONE_EVENT)
    b.configure(PCMU, ("127.0.0.1", a.port), dtmf=TELEPHONE_EVENT)
    a.start()
    b.start()
    yield a, b
    a.close()
    b.close()
    clock.close()
    assert pool.in_use == 0
