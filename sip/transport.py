"""asyncio transports for SIP (RFC 3261 §18): UDP and TCP, nothing else.

A *flow* is how to reach one peer: the UDP socket plus the peer's address, or
one TCP connection. Every received message arrives with the flow it came on,
so answers go back the same way; the layers above only call ``flow.send``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable

from sip.message import KEEPALIVE_PING, KEEPALIVE_PONG, PONG, SipParseError, StreamFramer

__all__ = ["Flow", "TcpConnection", "Transports", "UdpFlow"]

log = logging.getLogger("callswitch.sip")

Receiver = Callable[[bytes, "Flow"], None]

TCP_IDLE_TIMEOUT = 600.0  # seconds a connection may carry nothing before we close it


class Flow:
    """The interface shared by UDP flows and TCP connections."""

    __slots__ = ()
    transport = "UDP"
    reliable = False
    remote: tuple[str, int]
    local: tuple[str, int]

    def send(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        return True


class UdpFlow(Flow):
    __slots__ = ("_endpoint", "remote")

    def __init__(self, endpoint: UdpEndpoint, remote: tuple[str, int]) -> None:
        self._endpoint = endpoint
        self.remote = remote

    @property
    def local(self) -> tuple[str, int]:
        return self._endpoint.local

    def send(self, data: bytes) -> None:
        self._endpoint.sendto(data, self.remote)

    def __repr__(self) -> str:
        return f"<UDP {self.remote[0]}:{self.remote[1]}>"


class UdpEndpoint(asyncio.DatagramProtocol):
    """The one UDP socket SIP listens and sends on."""

    def __init__(self, receive: Receiver) -> None:
        self._receive = receive
        self._transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("0.0.0.0", 0)

    def connection_made(self, transport) -> None:
        self._transport = transport
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr) -> None:
        self._receive(data, UdpFlow(self, addr[:2]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the transaction timers handle it.
        pass

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpConnection(asyncio.Protocol, Flow):
    """One TCP connection, framed by Content-Length (RFC 3261 §18.3)."""

    transport = "TCP"
    reliable = True

    def __init__(
        self, receive: Receiver, registry: Transports, remote: tuple[str, int] | None = None
    ) -> None:
        self._receive = receive
        self._registry = registry
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._pending: list[bytes] = []  # writes queued while connecting
        self._closed = False
        self.remote = remote or ("", 0)
        self.local = ("", 0)
        self.last_activity = asyncio.get_running_loop().time()

    def connection_made(self, transport) -> None:
        self._transport = transport
        self.remote = transport.get_extra_info("peername")[:2]
        self.local = transport.get_extra_info("sockname")[:2]
        self._registry.opened(self)
        for data in self._pending:
            transport.write(data)
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
        self.last_activity = asyncio.get_running_loop().time()
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            log.info("sip.stream_error", extra={"peer": self.remote, "reason": exc.reason})
            self.close()
            return
        for item in items:
            if item is KEEPALIVE_PING:
                self.send(PONG)  # RFC 5626 §4.4.1
            elif item is not KEEPALIVE_PONG:
                self._receive(item, self)

    def connection_lost(self, exc) -> None:
        self._closed = True
        self._registry.closed(self)

    @property
    def is_open(self) -> bool:
        return not self._closed

    def send(self, data: bytes) -> None:
        if self._closed:
            return
        if self._transport is None:
            self._pending.append(data)
        else:
            self._transport.write(data)

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def __repr__(self) -> str:
        return f"<TCP {self.remote[0]}:{self.remote[1]}>"


class Transports:
    """The SIP listeners of one node and the flows to peers."""

    def __init__(self, receive: Receiver) -> None:
        self._receive = receive
        self.udp: UdpEndpoint | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._connections: dict[tuple[str, int], TcpConnection] = {}
        self._sweeper: asyncio.Task | None = None

    async def start(self, host: str, port: int, *, udp: bool = True, tcp: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if udp:
            _, self.udp = await loop.create_datagram_endpoint(
                lambda: UdpEndpoint(self._receive), local_addr=(host, port)
            )
        if tcp:
            self._tcp_server = await loop.create_server(
                lambda: TcpConnection(self._receive, self),
                host,
                port,
                reuse_address=True,
            )
            self._sweeper = asyncio.create_task(self._sweep_idle())

    def listeners(self) -> dict[str, str]:
        found = {}
        if self.udp is not None:
            found["sip_udp"] = "%s:%d" % self.udp.local
        if self._tcp_server is not None:
            for sock in self._tcp_server.sockets:
                found["sip_tcp"] = "%s:%d" % sock.getsockname()[:2]
        return found

    def opened(self, connection: TcpConnection) -> None:
        self._connections[connection.remote] = connection

    def closed(self, connection: TcpConnection) -> None:
        if self._connections.get(connection.remote) is connection:
            del self._connections[connection.remote]

    async def _sweep_idle(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TCP_IDLE_TIMEOUT / 4)
            cutoff = loop.time() - TCP_IDLE_TIMEOUT
            for connection in list(self._connections.values()):
                if connection.last_activity < cutoff:
                    connection.close()

    def flow_for(self, transport: str, host: str, port: int | None) -> Flow | None:
        """A flow to ``host:port`` over ``transport``; None when it cannot exist."""
        transport = transport.upper()
        if not _is_ip(host):
            return None  # RFC 3263 name resolution is not done here (yet)
        host = host.strip("[]")
        if transport == "UDP":
            if self.udp is None:
                return None
            return UdpFlow(self.udp, (host, port or 5060))
        if transport == "TCP":
            remote = (host, port or 5060)
            connection = self._connections.get(remote)
            if connection is not None and connection.is_open:
                return connection
            connection = TcpConnection(self._receive, self, remote)
            self._connections[remote] = connection
            asyncio.get_running_loop().create_task(self._connect(connection))
            return connection
        return None

    async def _connect(self, connection: TcpConnection) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: connection, *connection.remote), timeout=10
            )
        except (TimeoutError, OSError):
            connection.connection_lost(None)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._tcp_server is not None:
            self._tcp_server.close()
        for connection in list(self._connections.values()):
            connection.close()
        if self.udp is not None:
            self.udp.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
