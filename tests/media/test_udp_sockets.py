"""media.udp_sockets: RTP/RTCP sockets bound without the loop's resolver."""

from __future__ import annotations

import socket

import pytest

from media.udp_sockets import bind_udp, bind_udp_pair
from tests.peers import require


def _free_pair() -> int:
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1] & ~1
        probe.close()
        try:
            a, b = bind_udp_pair("127.0.0.1", port)
        except OSError:
            continue
        a.close()
        b.close()
        return port
    raise AssertionError("no free even/odd port pair")


def test_binds_an_ipv4_literal_non_blocking() -> None:
    sock = bind_udp("127.0.0.1", 0)
    try:
        assert sock.family == socket.AF_INET
        assert sock.getblocking() is False
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_binds_an_ipv6_literal() -> None:
    require(socket.has_ipv6, "no IPv6 in this kernel")
    try:
        sock = bind_udp("::1", 0)
    except OSError:
        sock = None
    require(sock is not None, "::1 not configured")
    assert sock is not None
    try:
        assert sock.family == socket.AF_INET6
    finally:
        sock.close()


def test_resolves_a_host_name() -> None:
    sock = bind_udp("localhost", 0)
    try:
        assert sock.family in (socket.AF_INET, socket.AF_INET6)
    finally:
        sock.close()


def test_pair_is_rtp_and_the_port_above() -> None:
    port = _free_pair()
    rtp, rtcp = bind_udp_pair("127.0.0.1", port)
    try:
        assert (rtp.getsockname()[1], rtcp.getsockname()[1]) == (port, port + 1)
    finally:
        rtp.close()
        rtcp.close()


def test_taken_rtcp_port_fails_and_frees_the_rtp_port() -> None:
    port = _free_pair()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", port + 1))
    try:
        with pytest.raises(OSError):
            bind_udp_pair("127.0.0.1", port)
        again = bind_udp("127.0.0.1", port)  # the RTP half was closed, not leaked
        again.close()
    finally:
        squatter.close()
