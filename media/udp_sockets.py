"""UDP sockets bound without a trip through the event loop's resolver.

``loop.create_datagram_endpoint(local_addr=(host, port))`` resolves ``host``
with ``getaddrinfo`` first, and uvloop runs that on libuv's thread pool even for
an address literal: a thread woken and a loop iteration waited on for every
socket. Each call binds two (RTP, RTCP), so at a few hundred calls a second that
hand-off was a quarter of the event loop's CPU. Binding the socket here and
handing it over with ``sock=`` skips it; a host name is still resolved, once.
"""

from __future__ import annotations

import functools
import ipaddress
import socket

__all__ = ["bind_udp", "bind_udp_pair"]


@functools.lru_cache(maxsize=64)
def _family(host: str) -> socket.AddressFamily:
    """The address family of ``host``: at once for a literal, else resolved once."""
    try:
        version = ipaddress.ip_address(host.split("%", 1)[0]).version
    except ValueError:
        info = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        return socket.AddressFamily(info[0][0])
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``(host, port)``; OSError when it is taken."""
    sock = socket.socket(_family(host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_udp_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Sockets bound to ``port`` and ``port + 1`` (RTP and its RTCP), or OSError."""
    first = bind_udp(host, port)
    try:
        return first, bind_udp(host, port + 1)
    except OSError:
        first.close()
        raise
