"""The TURN server's sockets: UDP, TCP and TLS listeners and the relayed UDP ports.

A thin adapter around ``AllocationManager``. The relay path lives here because
it is the hottest loop of the project: a datagram is read into one shared,
preallocated buffer (four bytes in, so a ChannelData header fits in front of
it), looked up in two dicts and sent from that same buffer. Readers drain their
socket in one callback (up to ``BATCH`` datagrams) so the event loop is
entered once per burst rather than once per packet. Nothing on this path logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from turn.allocation import Allocation, AllocationManager, FiveTuple, RelayPorts
from turn.auth import Credentials
from turn.indications import read_send, write_data
from turn.policy import PeerPolicy, Quotas

__all__ = ["TurnServer", "TurnSettings", "local_ipv6_address", "local_ipv6_addresses"]

log = logging.getLogger("callswitch.turn")

BATCH = 64
BUFFER_SIZE = 65536 + 64
TICK_S = 1.0
MAX_TCP_BUFFER = 2 * 65536
_pack_into = struct.Struct("!HH").pack_into
_PADDING = (b"", b"\0", b"\0\0", b"\0\0\0")
TCP_IDLE_S = 30.0  # a connection that has not allocated by then is closed
MAX_TCP_BACKLOG = 1 << 20  # bytes queued to a slow TCP client before relay data is dropped


@dataclass(slots=True)
class TurnSettings:
    """What the composition root tells the TURN plane."""

    bind: str = "0.0.0.0"
    port: int = 3478
    tls_port: int | None = None
    tls_context: ssl.SSLContext | None = None
    relay_ports: tuple[int, int] = (30000, 39999)
    public_address: str = "127.0.0.1"
    realm: str = "callswitch"
    users: list[str] = field(default_factory=list)
    secret: str | None = None
    allow_peers: list[str] = field(default_factory=list)
    own_addresses: set[str] = field(default_factory=set)
    quotas: Quotas = field(default_factory=Quotas)


def local_ipv6_addresses() -> list[str]:
    """This host's IPv6 addresses, read from /proc (no traffic)."""
    try:
        with open("/proc/net/if_inet6") as handle:
            fields = handle.read().split()
    except OSError:
        return []
    found = []
    for raw in fields[::6]:
        with contextlib.suppress(ValueError):
            found.append(str(ipaddress.IPv6Address(int(raw, 16))))
    return found


def local_ipv6_address() -> str | None:
    """A global IPv6 address of this host, if any: where IPv6 relays can be reached."""
    for address in local_ipv6_addresses():
        if ipaddress.IPv6Address(address).is_global:
            return address
    return None


def _udp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Shared:
    """The one buffer every reader fills; safe because a reader sends before it returns."""

    buf = bytearray(BUFFER_SIZE)
    view = memoryview(buf)
    payload = view[4:]


class _UdpListener:
    """Clients over UDP: ChannelData relayed here, STUN handed to the manager."""

    def __init__(self, server: TurnServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.v6 = sock.family == socket.AF_INET6
        self.local = sock.getsockname()[:2]
        self.clients: dict[tuple[str, int], Allocation] = {}

    def on_readable(self) -> None:
        sock = self.sock
        buf = _Shared.buf
        view = _Shared.view
        clients = self.clients
        v6 = self.v6
        for _ in range(BATCH):
            try:
                n, addr = sock.recvfrom_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if v6:
                addr = addr[:2]
            first = buf[0]
            if 0x40 <= first <= 0x7F:
                allocation = clients.get(addr)
                if allocation is None or n < 4:
                    continue
                length = (buf[2] << 8) | buf[3]
                peer = allocation.channels.get((first << 8) | buf[1])
                if peer is None or length > n - 4 or peer[0] not in allocation.permissions:
                    continue
                allocation.budget -= length
                if allocation.budget < 0:
                    continue
                try:  # noqa: SIM105 - cheaper than suppress() per packet
                    allocation.handle.sock.sendto(view[4 : 4 + length], peer)
                except OSError:
                    pass
            elif first == 0 and buf[1] == 0x16:  # Send indication: the relay path too
                allocation = clients.get(addr)
                if allocation is not None:
                    self.server.send_indication(allocation, bytes(view[:n]))
            elif first < 0x40:
                self.server.on_stun(bytes(view[:n]), FiveTuple("udp", addr, self.local), self)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        try:  # noqa: SIM105 - cheaper than suppress() per packet
            self.sock.sendto(data, addr)
        except OSError:
            pass


class _TcpClient(asyncio.Protocol):
    """One client over TCP or TLS: a stream of STUN messages and padded ChannelData."""

    def __init__(self, server: TurnServer, transport_name: str) -> None:
        self.server = server
        self.name = transport_name
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.five_tuple: FiveTuple | None = None
        self.allocation: Allocation | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream's, by construction
        self.transport = transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.five_tuple = FiveTuple(self.name, (peer[0], peer[1]), (local[0], local[1]))
        self.server.tcp_clients.add(self)
        self.server.loop.call_later(TCP_IDLE_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self.allocation is None and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.tcp_clients.discard(self)
        self.server.client_gone(self.five_tuple)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        transport, five_tuple = self.transport, self.five_tuple
        if transport is None or five_tuple is None:
            return  # not connected (or gone)
        buffer = self.buffer
        buffer += data
        offset = 0
        size = len(buffer)
        while size - offset >= 4:
            first = buffer[offset]
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if first < 0x40:
                total = 20 + length
            elif first <= 0x7F and self.allocation is not None:
                total = 4 + length + (-length % 4)  # §12.5: padded over streams
            else:  # not TURN (or ChannelData before any allocation): hang up
                transport.close()
                return
            if size - offset < total:
                break
            if first == 0 and buffer[offset + 1] == 0x16:
                if self.allocation is not None:
                    frame = bytes(buffer[offset : offset + total])
                    self.server.send_indication(self.allocation, frame)
            elif first < 0x40:
                self.server.on_stun(bytes(buffer[offset : offset + total]), five_tuple, self)
            else:
                self._channel_data(buffer, offset, length)
            offset += total
        if offset:
            del buffer[:offset]
        if len(buffer) > MAX_TCP_BUFFER and self.transport is not None:
            self.transport.close()

    def _channel_data(self, buffer: bytearray, offset: int, length: int) -> None:
        allocation = self.allocation
        if allocation is None:
            return
        peer = allocation.channels.get((buffer[offset] << 8) | buffer[offset + 1])
        if peer is None or peer[0] not in allocation.permissions:
            return
        allocation.budget -= length
        if allocation.budget < 0:
            return
        try:  # noqa: SIM105 - cheaper than suppress() per packet
            allocation.handle.sock.sendto(buffer[offset + 4 : offset + 4 + length], peer)
        except OSError:
            pass

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        transport = self.transport
        # A client that does not read its relay data loses it, as on UDP, rather
        # than growing our memory.
        if transport is not None and transport.get_write_buffer_size() < MAX_TCP_BACKLOG:
            transport.write(data)


class _Relay:
    """One allocation's relayed UDP socket: peer datagrams to the client."""

    __slots__ = ("allocation", "client", "client_addr", "client_sock", "sock", "stream", "v6")

    def __init__(
        self,
        allocation: Allocation,
        sock: socket.socket,
        client: _UdpListener | _TcpClient,
        client_addr: tuple[str, int],
    ) -> None:
        self.allocation = allocation
        self.sock = sock
        self.client = client
        self.client_addr = client_addr
        # Over TCP/TLS ChannelData goes to the stream, over UDP straight to the listener's socket.
        self.stream = client if isinstance(client, _TcpClient) else None
        self.client_sock = client.sock if isinstance(client, _UdpListener) else None
        self.v6 = sock.family == socket.AF_INET6

    def on_readable(self) -> None:
        sock = self.sock
        allocation = self.allocation
        channel_peers = allocation.channel_peers
        permissions = allocation.permissions
        v6, stream, client, client_addr = self.v6, self.stream, self.client, self.client_addr
        client_sock = self.client_sock
        buf = _Shared.buf
        view = _Shared.view
        payload = _Shared.payload
        for _ in range(BATCH):
            try:
                n, addr = sock.recvfrom_into(payload)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if v6:
                addr = addr[:2]
            number = channel_peers.get(addr)
            if number is not None:
                allocation.budget -= n
                if allocation.budget < 0:
                    continue
                _pack_into(buf, 0, number, n)
                if stream is not None:
                    end = 4 + n
                    pad = -n % 4
                    if pad:
                        buf[end : end + pad] = _PADDING[pad]
                    stream.send(bytes(view[: end + pad]))
                elif client_sock is not None:
                    try:  # noqa: SIM105 - cheaper than suppress() per packet
                        client_sock.sendto(view[: 4 + n], client_addr)
                    except OSError:
                        pass
            elif addr[0] in permissions:
                allocation.budget -= n
                if allocation.budget < 0:
                    continue
                client.send(write_data(addr, payload[:n]), client_addr)


def _not_told(reason: str, source_ip: str, **fields: object) -> None:
    pass


class TurnServer:
    """TURN (RFC 8656) on UDP and TCP, TLS when there is a certificate, relays from a range."""

    def __init__(self, settings: TurnSettings, refused: Callable[..., None] | None = None) -> None:
        self.settings = settings
        s = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self.credentials = Credentials.from_settings(s.realm, s.users, s.secret)
        bind6 = s.bind if ":" in s.bind else None
        if s.bind in ("0.0.0.0", ""):
            bind6 = "::" if local_ipv6_address() else None
        self.bind4 = None if ":" in s.bind else (s.bind or "0.0.0.0")
        self.bind6 = bind6
        public6 = s.public_address if ":" in s.public_address else None
        relay6 = public6 or (s.bind if bind6 not in (None, "::") else local_ipv6_address())
        relay4 = (
            None
            if self.bind4 is None
            else (s.public_address if ":" not in s.public_address else self.bind4)
        )
        protected = {s.port} | ({s.tls_port} if s.tls_port else set())
        own = set(s.own_addresses) | {s.public_address} | set(local_ipv6_addresses())
        if s.bind not in ("0.0.0.0", "::", ""):
            own.add(s.bind)
        self.manager = AllocationManager(
            self.credentials,
            ports=RelayPorts(*s.relay_ports),
            relay_address=relay4,
            relay_address6=relay6 if bind6 else None,
            policy=PeerPolicy(allow=list(s.allow_peers), own_addresses=own),
            quotas=s.quotas,
            open_relay=self._open_relay,
            close_relay=self._close_relay,
            send_to_peer=self._send_to_peer,
            protected_ports=frozenset(protected),
            refused=refused or _not_told,
        )
        self._protected_ports = self.manager.protected_ports
        self._own_addresses = self.manager.policy.own_addresses
        self.udp: list[_UdpListener] = []
        self.tcp_servers: list[asyncio.base_events.Server] = []
        self.tcp_clients: set[_TcpClient] = set()
        self._client_of: dict[FiveTuple, _UdpListener | _TcpClient] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.listeners: dict[str, str] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on, once started."""
        assert self._loop is not None, "start() first"
        return self._loop

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        hosts = [h for h in (self.bind4, self.bind6) if h]
        for host in hosts:
            try:
                sock = _udp_socket(host, s.port)
            except OSError:
                if host is self.bind6 and self.bind4:
                    self.bind6 = None
                    self.manager.relay_address[6] = None
                    continue  # IPv6 is a bonus where the machine has it
                raise
            listener = _UdpListener(self, sock)
            self.loop.add_reader(sock.fileno(), listener.on_readable)
            self.udp.append(listener)
            self.tcp_servers.append(
                await self.loop.create_server(
                    lambda: _TcpClient(self, "tcp"), host, s.port, reuse_address=True
                )
            )
            if s.tls_context is not None and s.tls_port:
                self.tcp_servers.append(
                    await self.loop.create_server(
                        lambda: _TcpClient(self, "tls"),
                        host,
                        s.tls_port,
                        ssl=s.tls_context,
                        reuse_address=True,
                    )
                )
        for bound in (self.bind4, self.bind6):
            if bound:
                suffix = "" if bound is self.bind4 else "6"
                shown = f"[{bound}]" if ":" in bound else bound
                self.listeners[f"turn_udp{suffix}"] = f"{shown}:{s.port}"
                self.listeners[f"turn_tcp{suffix}"] = f"{shown}:{s.port}"
                if s.tls_context is not None and s.tls_port:
                    self.listeners[f"turn_tls{suffix}"] = f"{shown}:{s.tls_port}"
        self.listeners["turn_relay"] = "%d-%d" % s.relay_ports
        self._timer = self.loop.call_later(TICK_S, self._tick)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.manager.close_all()
        for listener in self.udp:
            self.loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
        self.udp.clear()
        for server in self.tcp_servers:
            server.close()
        for client in list(self.tcp_clients):
            if client.transport is not None:
                client.transport.close()
        for server in self.tcp_servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self.tcp_servers.clear()

    def _tick(self) -> None:
        try:
            self.manager.tick(self.loop.time())
        finally:
            self._timer = self.loop.call_later(TICK_S, self._tick)

    # -- from the transports --------------------------------------------------------

    def on_stun(
        self, data: bytes, five_tuple: FiveTuple, client: _UdpListener | _TcpClient
    ) -> None:
        self._client_of[five_tuple] = client
        try:
            answer = self.manager.handle(data, five_tuple, self.loop.time(), time.time())
        except Exception:  # the server must outlive any message; say what broke, once
            log.exception("turn.internal_error", extra={"client": five_tuple.client})
            answer = None
        finally:
            if five_tuple not in self.manager.allocations:
                self._client_of.pop(five_tuple, None)
        if answer is not None:
            client.send(answer, five_tuple.client)

    def send_indication(self, allocation: Allocation, data: bytes) -> None:
        """A Send indication's data to its peer, if permitted (§11.2); else dropped."""
        parsed = read_send(data)
        if parsed is None:
            return
        peer, payload = parsed
        host = peer[0]
        if host not in allocation.permissions:
            return
        if peer[1] in self._protected_ports and host in self._own_addresses:
            return
        allocation.budget -= len(payload)
        if allocation.budget < 0:
            return
        try:  # noqa: SIM105 - cheaper than suppress() per packet
            allocation.handle.sock.sendto(payload, peer)
        except OSError:
            pass

    def client_gone(self, five_tuple: FiveTuple | None) -> None:
        """A TCP/TLS connection closed: its allocation goes with it (§7)."""
        allocation = self.manager.allocations.get(five_tuple) if five_tuple else None
        if allocation is not None:
            self.manager.delete(allocation)

    # -- from the manager -----------------------------------------------------------

    def _open_relay(self, allocation: Allocation, port: int) -> bool:
        host = self.bind4 if allocation.family == 4 else self.bind6
        if host is None:  # the manager offers only the families we bound
            return False
        try:
            sock = _udp_socket(host, port)
        except OSError:
            return False
        if allocation.dont_fragment and allocation.family == 4:
            with contextlib.suppress(OSError, AttributeError):
                # Linux-only constants (hence AttributeError above); typeshed omits them.
                sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_MTU_DISCOVER,  # type: ignore[attr-defined]
                    socket.IP_PMTUDISC_DO,  # type: ignore[attr-defined]
                )
        five_tuple = allocation.five_tuple
        client = self._client_of[five_tuple]  # on_stun put it there before the Allocate
        relay = _Relay(allocation, sock, client, five_tuple.client)
        allocation.handle = relay
        if isinstance(client, _UdpListener):
            client.clients[five_tuple.client] = allocation
        elif isinstance(client, _TcpClient):
            client.allocation = allocation
        self.loop.add_reader(sock.fileno(), relay.on_readable)
        return True

    def _close_relay(self, allocation: Allocation) -> None:
        relay = allocation.handle
        if relay is None:
            return
        allocation.handle = None
        self._client_of.pop(allocation.five_tuple, None)
        client = relay.client
        if isinstance(client, _UdpListener):
            client.clients.pop(allocation.five_tuple.client, None)
        elif isinstance(client, _TcpClient) and client.allocation is allocation:
            client.allocation = None
        with contextlib.suppress(Exception):
            self.loop.remove_reader(relay.sock.fileno())
        relay.sock.close()

    def _send_to_peer(self, allocation: Allocation, payload: bytes, peer: tuple[str, int]) -> None:
        allocation.budget -= len(payload)
        if allocation.budget < 0:
            return
        with contextlib.suppress(OSError):
            allocation.handle.sock.sendto(payload, peer)
