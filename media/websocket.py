"""A WebSocket client connection (RFC 6455) on a plain asyncio transport.

The protocol is the ``websockets`` library's sans-I/O :class:`ClientProtocol`;
this module is only its shell: bytes from the socket go into it, its frames and
handshake go out to the transport. Media Streams send fifty small messages a
second per call, so the shell does what the library's asyncio layer would
otherwise do per message with a task, a lock and a future: a send is one
frame serialised and one ``transport.write``, a received message is one callback.

Back-pressure is the transport's: past ``high_water`` bytes waiting to leave,
:attr:`WebSocketConnection.writable` turns False and stays so until the buffer
drains, so a caller can drop what a slow reader cannot take instead of queueing
it without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["WebSocketConnection", "WebSocketOpenError", "open_websocket"]

HIGH_WATER = 64 * 1024  # bytes waiting in the transport before sends are refused
SEND_BUFFER = 64 * 1024  # the kernel's share of the same queue (SO_SNDBUF)
CLOSE_TIMEOUT_S = 2.0  # after our close frame, how long the server may take to close TCP


class WebSocketOpenError(Exception):
    """The URL is not a WebSocket URL, or the server refused, timed out or failed the handshake."""


def _ignore(*args) -> None:
    pass


class WebSocketConnection(asyncio.Protocol):
    """One client connection: :meth:`send_text`, ``on_message`` and the ``closed`` future.

    ``on_message(data)`` gets each text or binary message's payload (bytes). ``closed``
    resolves once the TCP connection is gone: with None after a normal closing
    handshake (codes 1000 and 1001 both ways), else with the
    :class:`~websockets.exceptions.ConnectionClosed` that says what happened.
    """

    def __init__(self, protocol: ClientProtocol, high_water: int = HIGH_WATER) -> None:
        loop = asyncio.get_running_loop()
        self.ws = protocol
        self.high_water = high_water
        self.on_message: Callable[[bytes], None] = _ignore
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[ConnectionClosed | None] = loop.create_future()
        self.writable = False
        self.transport: asyncio.Transport | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=self.high_water)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                self._handshake_done()
            elif event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY:
                self.on_message(event.data)
        self._flush()
        if ws.close_expected():
            self._close_soon()

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self._flush()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        ws = self.ws
        if ws.state is not State.CLOSED:
            ws.receive_eof()
        ws.data_to_send()
        self.writable = False
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.opened.done():
            reason = ws.handshake_exc or exc or ConnectionError("closed during the handshake")
            self.opened.set_exception(WebSocketOpenError(str(reason)))
        if not self.closed.done():
            closed = ws.close_exc
            self.closed.set_result(None if _normal(closed) else closed)

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = self.ws.state is State.OPEN

    # -- sending

    def send_text(self, data: bytes) -> None:
        """Send one text message (UTF-8 bytes), whatever the buffer holds."""
        if self.ws.state is State.OPEN:
            self.ws.send_text(data)
            self._flush()

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the transport closes when the server answers
        (or after :data:`CLOSE_TIMEOUT_S`)."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(code)
            self._flush()
            self._close_soon()
        elif self.transport is not None and self.ws.state is State.CONNECTING:
            self.transport.abort()

    # -- internals

    def _handshake_done(self) -> None:
        if self.opened.done():
            return
        if self.ws.handshake_exc is not None:
            self.opened.set_exception(WebSocketOpenError(str(self.ws.handshake_exc)))
            return
        self.writable = True
        self.opened.set_result(None)

    def _flush(self) -> None:
        transport = self.transport
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    def _close_soon(self) -> None:
        if self._close_timer is None and self.transport is not None:
            self._close_timer = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT_S, self.transport.abort
            )


def _normal(closed: ConnectionClosed) -> bool:
    received, sent = closed.rcvd, closed.sent
    return (
        received is not None
        and sent is not None
        and received.code in (1000, 1001)
        and sent.code in (1000, 1001)
    )


async def open_websocket(
    url: str,
    *,
    timeout: float,
    max_size: int = 1 << 20,
    ssl_context: ssl.SSLContext | None = None,
    on_message: Callable[[bytes], None] = _ignore,
    high_water: int = HIGH_WATER,
) -> WebSocketConnection:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete the opening handshake
    within ``timeout`` seconds; :class:`WebSocketOpenError` otherwise.

    ``on_message`` is in place before the handshake ends: a server may send its first
    messages in the same packet as its handshake response."""
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise WebSocketOpenError(str(exc)) from exc
    loop = asyncio.get_running_loop()
    tls = (ssl_context or ssl.create_default_context()) if uri.secure else None
    connection = WebSocketConnection(ClientProtocol(uri, max_size=max_size), high_water)
    connection.on_message = on_message
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: connection,
                uri.host,
                uri.port,
                ssl=tls,
                server_hostname=uri.host if tls else None,
            )
            await connection.opened
    except WebSocketOpenError:
        _abort(connection)
        raise
    except TimeoutError as exc:
        _abort(connection)
        raise WebSocketOpenError(f"timed out after {timeout:g} s") from exc
    except (OSError, ssl.SSLError, ValueError) as exc:  # refused, unreachable, DNS, TLS
        _abort(connection)
        raise WebSocketOpenError(str(exc) or type(exc).__name__) from exc
    return connection


def _abort(connection: WebSocketConnection) -> None:
    if not connection.opened.done():
        connection.opened.cancel()  # connection_lost will find it settled
    elif not connection.opened.cancelled():
        connection.opened.exception()  # retrieved: no "never retrieved" warning
    if connection.transport is not None:
        connection.transport.abort()
