"""asyncio transports for SIP (RFC 3261 §18, §26): UDP, TCP and TLS.

A *flow* is how to reach one peer: the UDP socket plus the peer's address, or
one TCP or TLS connection. Every received message arrives with the flow it came
on, so answers go back the same way; the layers above only call ``flow.send``.

TLS (RFC 3261 §26.2.1, RFC 5630 §3) is TCP with asyncio's SSL layer underneath:
the protocol object sees plaintext and frames it exactly like TCP.
WebSocket connections (RFC 7118, sip/ws_transport.py) are stream connections
too: :meth:`Transports.serve` listens for them, under the same caps.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Callable
from typing import Any, cast

from sip.connections import PER_SOURCE, ConnectionTable
from sip.errors import SipParseError
from sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG, PONG, StreamFramer

__all__ = [
    "Flow",
    "TcpConnection",
    "TlsConnection",
    "Transports",
    "UdpFlow",
    "client_tls_context",
    "server_tls_context",
]

log = logging.getLogger("callswitch.sip")

Receiver = Callable[[bytes, "Flow"], None]

TCP_IDLE_TIMEOUT = 600.0  # seconds a connection may carry nothing before we close it
MESSAGE_TIMEOUT = 30.0  # seconds to complete the first message, or any message begun
TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds a peer gets to finish its TLS handshake
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}  # RFC 3261 §19.1.2
# Transports of connections we only accept, never open (a browser is not a server).
ACCEPTED_ONLY = frozenset({"WS", "WSS"})


class Flow:
    """The interface shared by UDP flows and TCP and TLS connections."""

    __slots__ = ()
    transport = "UDP"
    reliable = False
    remote: tuple[str, int]

    @property
    def local(self) -> tuple[str, int]:  # pragma: no cover - interface
        raise NotImplementedError

    def send(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        return True

    def watch(self, on_closed: Callable[[], None], on_pong: Callable[[], None]) -> None:
        """Be told when the flow closes and when a CRLF keep-alive pong arrives on it
        (RFC 5626 §4.4.1); a UDP flow does neither."""

    def unwatch(self, on_closed: Callable[[], None]) -> None:
        """Stop telling the watcher registered with ``on_closed``."""


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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # a datagram socket's
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
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
        self.inbound = remote is None  # accepted by a listener, not opened by us
        self.remote = remote or ("", 0)
        self._local = ("", 0)
        self._watchers: list[tuple[Callable[[], None], Callable[[], None]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream's, by construction
        self._transport = transport
        self.remote = transport.get_extra_info("peername")[:2]
        self._local = transport.get_extra_info("sockname")[:2]
        if not self._registry.opened(self):
            self._closed = True
            transport.abort()  # refused: closed at once, nothing read or written
            return
        for data in self._pending:
            transport.write(data)
        self._pending.clear()

    @property
    def local(self) -> tuple[str, int]:
        return self._local

    def data_received(self, data: bytes) -> None:
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            log.info("sip.stream_error", extra={"peer": self.remote, "reason": exc.reason})
            self.close()
            return
        messages = 0
        keepalive = False
        for item in items:
            if item is KEEPALIVE_PING:
                keepalive = True
                self.send(PONG)  # RFC 5626 §4.4.1
            elif item is KEEPALIVE_PONG:
                keepalive = True
                for _, on_pong in list(self._watchers):
                    on_pong()
            elif isinstance(item, bytes):
                messages += 1
                self._receive(item, self)
        self._registry.received(self, messages, keepalive, self._framer.pending)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._registry.closed(self)
        watchers, self._watchers = self._watchers, []
        for on_closed, _ in watchers:
            on_closed()

    def watch(self, on_closed: Callable[[], None], on_pong: Callable[[], None]) -> None:
        self._watchers.append((on_closed, on_pong))

    def unwatch(self, on_closed: Callable[[], None]) -> None:
        self._watchers = [w for w in self._watchers if w[0] != on_closed]

    @property
    def is_open(self) -> bool:
        return not self._closed

    def send(self, data: bytes) -> None:
        self._write(data)

    def _write(self, data: bytes) -> None:
        """Bytes to the connection (a TLS connection encrypts them first)."""
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
        return f"<{self.transport} {self.remote[0]}:{self.remote[1]}>"


class TlsConnection(TcpConnection):
    """One TLS connection (RFC 3261 §26.2.1): the TCP framing over a TLS stream.

    Connections we open are handshaken by asyncio's SSL layer before
    ``connection_made``, and ``data_received`` gets plaintext. Those our
    listener accepts (``server_context``) arrive as plain TCP and are admitted
    at once, so that one still in its handshake counts against its source and
    the node's budget; TLS then runs here over memory BIOs (RFC 8446 records in,
    plaintext to the framer), with ``TLS_HANDSHAKE_TIMEOUT`` to finish the
    handshake. A peer that fails it never reaches the SIP layer.
    """

    transport = "TLS"

    def __init__(
        self,
        receive: Receiver,
        registry: Transports,
        remote: tuple[str, int] | None = None,
        *,
        server_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(receive, registry, remote)
        self._server_context = server_context
        self._tls: ssl.SSLObject | None = None  # the server side's TLS, once admitted
        self._handshaken = False
        self._handshake_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._server_context is None or self._closed:
            return  # ours (asyncio did the handshake), or refused
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = self._server_context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshake_timer = asyncio.get_running_loop().call_later(
            TLS_HANDSHAKE_TIMEOUT, self._handshake_expired
        )

    def data_received(self, data: bytes) -> None:
        if self._server_context is None:
            super().data_received(data)
            return
        if self._tls is None:
            return  # refused: closing
        self._incoming.write(data)
        try:
            if not self._handshaken:
                self._tls.do_handshake()
                self._handshake_done()
            plain = self._read_plaintext()
        except ssl.SSLWantReadError:
            plain = b""
        except (ssl.SSLError, ValueError) as exc:
            log.info("sip.tls_error", extra={"peer": self.remote, "reason": str(exc)})
            self._flush()
            self.close()
            return
        self._flush()
        if plain:
            super().data_received(plain)

    def _read_plaintext(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self._tls.read(65536)  # type: ignore[union-attr]
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the peer's close_notify
                self.close()
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _handshake_done(self) -> None:
        self._handshaken = True
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        pending, self._pending = self._pending, []
        for data in pending:
            self._write(data)

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if not self._handshaken:
            self.close()

    def _write(self, data: bytes) -> None:
        if self._server_context is None:
            super()._write(data)
            return
        if self._closed:
            return
        if not self._handshaken:
            self._pending.append(data)
            return
        assert self._tls is not None  # set before the handshake
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            log.info("sip.tls_error", extra={"peer": self.remote, "reason": str(exc)})
            self.close()
            return
        self._flush()

    def _flush(self) -> None:
        out = self._outgoing.read()
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        super().connection_lost(exc)


def server_tls_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """The TLS listener's context: our certificate chain (PEM) and its key.

    ``key_file`` may be omitted when the key is in ``cert_file``. Peers are not
    asked for a certificate: SIP clients authenticate with digest (RFC 3261 §22).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996: no TLS 1.0/1.1
    try:
        context.load_cert_chain(cert_file, key_file)
    except OSError as exc:  # a missing file, or a PEM that is not a cert/key pair
        raise OSError(
            f"cannot load the SIP TLS certificate {cert_file} (key {key_file or cert_file}): {exc}"
        ) from exc
    return context


def client_tls_context(
    ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """The context for TLS connections we open (RFC 3261 §26.3.1).

    With ``ca_file`` the server's certificate must chain to it and name the
    address we dialled. Without one the certificate is not verified: carriers
    and PBXs often present certificates from private CAs or self-signed ones,
    and a connection that refuses them fails every call. The channel is still
    encrypted; an operator who has the peer's CA sets it and gets verification.
    ``cert_file``/``key_file`` are presented to peers that ask for a client
    certificate (mutual TLS, which some carriers require).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except OSError as exc:
            raise OSError(f"cannot load the SIP TLS CA file {ca_file}: {exc}") from exc
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except OSError as exc:
            raise OSError(f"cannot load the SIP TLS certificate {cert_file}: {exc}") from exc
    return context


ConnectionKey = tuple[str, str, int]  # (transport, host, port): TCP and TLS to one port differ


def _key(connection: TcpConnection) -> ConnectionKey:
    return (connection.transport, connection.remote[0], connection.remote[1])


class Transports:
    """The SIP listeners of one node and the flows to peers.

    ``tls_client`` is the context for TLS connections we open; without one
    they do not verify the server (see :func:`client_tls_context`).
    """

    def __init__(
        self,
        receive: Receiver,
        tls_client: ssl.SSLContext | None = None,
        *,
        table: ConnectionTable | None = None,
        refused: Callable[..., None] = lambda reason, source_ip, **fields: None,
    ) -> None:
        self._receive = receive
        self.udp: UdpEndpoint | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._tls_server: asyncio.base_events.Server | None = None
        self._tls_client = tls_client
        self._servers: dict[str, asyncio.base_events.Server] = {}  # more listeners, by name
        self._connections: dict[ConnectionKey, TcpConnection] = {}
        # Who holds which connection and until when (sip.connections): the
        # per-source cap, the node's budget of descriptors, the deadlines.
        self.table = (
            table
            if table is not None
            else ConnectionTable(
                asyncio.get_running_loop().time,
                max_per_source=0,
                message_timeout=MESSAGE_TIMEOUT,
                idle_timeout=TCP_IDLE_TIMEOUT,
            )
        )
        self._refused = refused
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

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

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext) -> None:
        """Listen for SIP over TLS (RFC 3261 §26.2.1) on ``host:port``."""
        loop = asyncio.get_running_loop()
        self._tls_server = await loop.create_server(
            lambda: TlsConnection(self._receive, self, server_context=context),
            host,
            port,
            reuse_address=True,
        )

    async def serve(
        self, name: str, host: str, port: int, factory: Callable[[], TcpConnection]
    ) -> int:
        """Another stream listener (``name`` in :meth:`listeners`, e.g. ``sip_ws``) whose
        connections ``factory`` makes; they share this object's table and caps.
        Returns the port bound."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host, port, reuse_address=True)
        self._servers[name] = server
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    @property
    def tls_port(self) -> int | None:
        """The port the TLS listener is bound to, None without one."""
        if self._tls_server is None or not self._tls_server.sockets:
            return None
        port: int = self._tls_server.sockets[0].getsockname()[1]
        return port

    def listeners(self) -> dict[str, str]:
        found = {}
        if self.udp is not None:
            found["sip_udp"] = "%s:%d" % self.udp.local
        servers = [("sip_tcp", self._tcp_server), ("sip_tls", self._tls_server)]
        for name, server in [*servers, *self._servers.items()]:
            if server is not None:
                for sock in server.sockets:
                    found[name] = "%s:%d" % sock.getsockname()[:2]
        return found

    def opened(self, connection: TcpConnection) -> bool:
        """A connection is up: admit it (True) or say it must be closed at once."""
        source = connection.remote[0]
        refusal = self.table.open(connection, source, inbound=connection.inbound)
        if refusal is not None:
            reason = "sip.connections" if refusal == PER_SOURCE else "sip.connections_total"
            self._refused(reason, source, transport=connection.transport)
            return False
        self._connections[_key(connection)] = connection
        self._rearm()
        return True

    def received(
        self, connection: TcpConnection, messages: int, keepalive: bool, pending: bool
    ) -> None:
        self.table.received(connection, messages=messages, keepalive=keepalive, pending=pending)
        if pending:
            self._rearm()

    def closed(self, connection: TcpConnection) -> None:
        self.table.close(connection)
        key = _key(connection)
        if self._connections.get(key) is connection:
            del self._connections[key]

    def _rearm(self) -> None:
        """Keep one loop timer at the table's next deadline."""
        deadline = self.table.next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = self._timer_at = None
        for gone in self.table.expired():
            connection: TcpConnection = gone.key  # type: ignore[assignment]
            if gone.incomplete:
                self._refused("sip.incomplete", gone.source, transport=connection.transport)
            connection.close()
        self._rearm()

    def flow_for(self, transport: str, host: str, port: int | None) -> Flow | None:
        """A flow to ``host:port`` over ``transport``; None when it cannot exist.

        TCP and TLS reuse an open connection to the same address, else open one
        (RFC 3261 §18.1.1); messages sent meanwhile wait for it to connect.
        """
        transport = transport.upper()
        if transport in ACCEPTED_ONLY:  # a phone's WebSocket: only the one it opened
            connection = self._connections.get((transport, host.strip("[]"), port or 0))
            return connection if connection is not None and connection.is_open else None
        if not _is_ip(host) or transport not in DEFAULT_PORTS:
            return None  # RFC 3263 name resolution is not done here (yet)
        host = host.strip("[]")
        remote = (host, port or DEFAULT_PORTS[transport])
        if transport == "UDP":
            if self.udp is None:
                return None
            return UdpFlow(self.udp, remote)
        connection = self._connections.get((transport, *remote))
        if connection is not None and connection.is_open:
            return connection
        kind = TlsConnection if transport == "TLS" else TcpConnection
        connection = kind(self._receive, self, remote)
        self._connections[_key(connection)] = connection
        asyncio.get_running_loop().create_task(self._connect(connection))
        return connection

    def _client_context(self) -> ssl.SSLContext:
        if self._tls_client is None:
            self._tls_client = client_tls_context()
        return self._tls_client

    async def _connect(self, connection: TcpConnection) -> None:
        loop = asyncio.get_running_loop()
        host, port = connection.remote
        tls = connection.transport == "TLS"
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: connection,
                    host,
                    port,
                    ssl=self._client_context() if tls else None,
                    ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if tls else None,
                ),
                timeout=10,
            )
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError too
            log.info(
                "sip.connect_failed",
                extra={
                    "peer": connection.remote,
                    "transport": connection.transport,
                    "reason": str(exc) or type(exc).__name__,
                },
            )
            connection.connection_lost(None)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        for server in (self._tcp_server, self._tls_server, *self._servers.values()):
            if server is not None:
                server.close()
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
