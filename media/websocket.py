"""A WebSocket client connection (RFC 6455) on a plain asyncio transport.

The protocol is the ``websockets`` library's sans-I/O :class:`ClientProtocol`:
the handshake, control frames (ping, pong, close), fragmented messages and every
error go through it. Media Streams send fifty small messages a second each way
per call, so the common frame takes a short path of its own: a whole,
unfragmented text or binary message is cut out of the received bytes and handed
over at once, and a message we send is one masked frame written to the
transport (RFC 6455 §5.2, §5.3). Received bytes reach the library only as whole
frames, so its parser is always at a frame boundary when the short path reads.

Back-pressure is the transport's: past ``high_water`` bytes waiting to leave,
:attr:`WebSocketConnection.writable` turns False and stays so until the buffer
drains, so a caller can drop what a slow reader cannot take instead of queueing
it without bound. The other way, the consumer can stop reading
(:meth:`WebSocketConnection.pause_reading`) and a message budget per window bounds
what a flooding server costs: past either, the socket is not read, and TCP holds
the server back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import Frame, Opcode, apply_mask
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["WebSocketConnection", "WebSocketOpenError", "open_websocket"]

HIGH_WATER = 64 * 1024  # bytes waiting in the transport before sends are refused
SEND_BUFFER = 64 * 1024  # the kernel's share of the same queue (SO_SNDBUF)
CLOSE_TIMEOUT_S = 2.0  # after our close frame, how long the server may take to close TCP
MAX_RESPONSE_HEAD = 64 * 1024  # a handshake response's status line and headers
MASK_POOL = 4096  # random bytes read at once for masking keys: 1,024 frames' worth

_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
_MASKED = 0x80
_LENGTH_16 = struct.Struct("!BBH4s")  # with the masking key
_LENGTH_64 = struct.Struct("!BBQ4s")
_OPEN = State.OPEN


class WebSocketOpenError(Exception):
    """The URL is not a WebSocket URL, or the server refused, timed out or failed the handshake."""


def _ignore(*args: object) -> None:
    pass


class WebSocketConnection(asyncio.Protocol):
    """One client connection: :meth:`send_text`, ``on_message`` and the ``closed`` future.

    ``on_message(data)`` gets each text or binary message's payload (bytes). ``closed``
    resolves once the TCP connection is gone: with None after a normal closing
    handshake (codes 1000 and 1001 both ways), else with the
    :class:`~websockets.exceptions.ConnectionClosed` that says what happened.
    """

    # Reading is paused while the consumer holds it (pause_reading) or the message
    # budget of the window is spent. (Class defaults: tests build bare instances.)
    _reading_paused = False
    _held = False
    _throttle_timer: asyncio.TimerHandle | None = None
    message_budget = 0  # messages per budget_window (0: no limit)
    budget_window = 0.1
    throttled = 0  # times the budget paused reading
    _window_messages = 0
    _window_end = 0.0

    def __init__(
        self,
        protocol: ClientProtocol,
        max_size: int,
        high_water: int = HIGH_WATER,
        *,
        message_budget: int = 0,
        budget_window: float = 0.1,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.ws = protocol
        self.high_water = high_water
        self.on_message: Callable[[bytes], None] = _ignore
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[ConnectionClosed | None] = loop.create_future()
        self.writable = False
        self.transport: asyncio.Transport | None = None
        self.max_size = max_size  # the protocol's own limit, checked before the short path
        self._buffer = bytearray()  # the start of a frame still arriving
        self._fragments: list[bytes] | None = None  # a fragmented message being put together
        self._masks = b""
        self._mask_at = 0
        self._close_timer: asyncio.TimerHandle | None = None
        self.message_budget = message_budget
        self.budget_window = budget_window

    # -- reading at the consumer's pace, and within the message budget

    def pause_reading(self) -> None:
        """Hand over no more messages, and read nothing more from the socket, until
        :meth:`resume_reading`: TCP then holds the sender back (back-pressure). A
        message being handed over finishes; the rest of what was read waits."""
        self._held = True
        self._update_reading()

    def resume_reading(self) -> None:
        self._held = False
        self._update_reading()

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    def _update_reading(self) -> None:
        paused = self._held or self._throttle_timer is not None
        if paused == self._reading_paused:
            return
        self._reading_paused = paused
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
            return
        transport.resume_reading()
        if self._buffer and self.ws.state is State.OPEN:
            # Not from inside the caller (a media tick, a timer): on the loop's next turn.
            asyncio.get_running_loop().call_soon(self._read_buffered)

    def _read_buffered(self) -> None:
        if not self._reading_paused and self._buffer and self.ws.state is State.OPEN:
            self._frames_received(b"")

    def _budget_spent(self) -> None:
        """``message_budget`` messages handed over in this window: a new window if it
        is over, else read nothing more until it is."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._window_messages = 0
        if now >= self._window_end:
            self._window_end = now + self.budget_window
            return
        if self._throttle_timer is None:
            self.throttled += 1
            self._throttle_timer = loop.call_at(self._window_end, self._budget_renewed)
            self._update_reading()

    def _end_throttle(self) -> None:
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
            self._throttle_timer = None

    def _budget_renewed(self) -> None:
        self._throttle_timer = None
        self._window_end = asyncio.get_running_loop().time() + self.budget_window
        self._update_reading()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream's, by construction
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
        state = self.ws.state
        if state is _OPEN:
            self._frames_received(data)
        elif state is State.CONNECTING:
            self._handshake_received(data)
        else:  # closing: the library sees the closing handshake through
            self._feed(data)

    def _handshake_received(self, data: bytes) -> None:
        """The library reads the HTTP response; frames sent right behind it (in the same
        packet) are kept for the short path, so frames are only ever cut here."""
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_RESPONSE_HEAD:
                self._feed(bytes(buffer))  # the library gives up on it
                buffer.clear()
            return
        head, rest = bytes(buffer[: end + 4]), bytes(buffer[end + 4 :])
        buffer.clear()
        self._feed(head)
        if self.ws.state is State.OPEN:
            if rest:
                self._frames_received(rest)
        elif rest:
            self._feed(rest)  # the body of a refusal

    def _frames_received(self, data: bytes) -> None:
        """Cut whole frames out of the received bytes: a whole text or binary message
        goes to ``on_message`` at once, any other frame to the library (RFC 6455 §5.2).
        Once the consumer pauses reading, the rest waits in the buffer."""
        buffer = self._buffer
        if self._reading_paused:
            buffer += data
            return
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        size = len(data)
        position = 0
        while size - position >= 2:
            first = data[position]
            second = data[position + 1]
            length = second & 0x7F
            start = position + 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            if length > self.max_size:  # the library closes with 1009
                self._feed(data[position:])
                return
            if second & _MASKED:
                start += 4  # a server must not mask: the library fails the connection
            end = start + length
            if end > size:
                break
            if (
                first in (_FIN_TEXT, _FIN_BINARY)
                and not second & _MASKED
                and self._fragments is None
                and self.ws.state is _OPEN
            ):
                self.on_message(data[start:end])
                self._window_messages += 1
                if self._window_messages == self.message_budget:
                    self._budget_spent()
            else:
                self._feed(data[position:end])
            position = end
            if self._reading_paused:
                break
        if position < size:
            self._buffer += data[position:]

    def _feed(self, data: bytes) -> None:
        """Bytes for the library's parser; then what it makes of them."""
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                self._handshake_done()
                continue
            if not isinstance(event, Frame):  # (a client is sent no Request)
                continue
            opcode = event.opcode
            raw = event.data  # bytes from the parser, though its type allows more
            data = raw if isinstance(raw, bytes) else bytes(raw)
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if event.fin:
                    self.on_message(data)
                else:
                    self._fragments = [data]
            elif opcode is Opcode.CONT and self._fragments is not None:
                self._fragments.append(data)
                if event.fin:
                    message, self._fragments = b"".join(self._fragments), None
                    self.on_message(message)
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
        self._end_throttle()
        if not self.opened.done():
            reason = ws.handshake_exc or exc or ConnectionError("closed during the handshake")
            self.opened.set_exception(WebSocketOpenError(str(reason)))
        if not self.closed.done():
            closed = ws.close_exc
            self.closed.set_result(None if _normal(closed) else closed)
        # The library's parser is a generator that holds the protocol and, once done,
        # stays parked at its last yield: a cycle that would keep this connection and
        # what it holds until a full collection, which the server runs rarely. Nothing
        # is fed to it after the connection is lost.
        ws.parser.close()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = self.ws.state is State.OPEN

    # -- sending

    def send_text(self, data: bytes) -> None:
        """Send one text message (UTF-8 bytes), whatever the buffer holds: one masked
        frame, one write (RFC 6455 §5.3: a fresh, unpredictable key per frame)."""
        if self.ws.state is not _OPEN:
            return
        at = self._mask_at
        masks = self._masks
        if at >= len(masks):
            masks = self._masks = os.urandom(MASK_POOL)
            at = 0
        self._mask_at = at + 4
        mask = masks[at : at + 4]
        length = len(data)
        if length < 126:
            header = bytes((_FIN_TEXT, _MASKED | length)) + mask
        elif length < 65536:
            header = _LENGTH_16.pack(_FIN_TEXT, _MASKED | 126, length, mask)
        else:
            header = _LENGTH_64.pack(_FIN_TEXT, _MASKED | 127, length, mask)
        transport = self.transport
        if transport is not None:  # (it is: the state is OPEN)
            transport.write(header + apply_mask(data, mask))

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the transport closes when the server answers
        (or after :data:`CLOSE_TIMEOUT_S`)."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(code)
            self._flush()
            self._close_soon()
            if self._reading_paused:  # the server's close frame must get through
                self._held = False
                self._end_throttle()
                self._reading_paused = False
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.resume_reading()
                buffered = bytes(self._buffer)
                self._buffer.clear()
                if buffered:
                    self._feed(buffered)
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
        if transport is None:
            return
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
    resolve: Callable[[str, int], Awaitable[str]] | None = None,
    message_budget: int = 0,
    budget_window: float = 0.1,
    on_connection: Callable[[WebSocketConnection], None] = _ignore,
) -> WebSocketConnection:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete the opening handshake
    within ``timeout`` seconds; :class:`WebSocketOpenError` otherwise.

    ``on_message`` is in place before the handshake ends: a server may send its first
    messages in the same packet as its handshake response, and ``on_connection`` gets
    the connection before any (so a consumer can pause reading from the very first
    message). ``resolve(host, port)``,
    when given, is the address to connect to (the URL's host stays the Host header
    and TLS server name); an ``OSError`` from it (the fetch policy's refusal, a
    failed lookup) fails the open as an unreachable host does. ``message_budget`` (0: no
    limit) is how many messages are handed over per ``budget_window`` seconds; past
    it, reading pauses for the rest of the window."""
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise WebSocketOpenError(str(exc)) from exc
    loop = asyncio.get_running_loop()
    tls = (ssl_context or ssl.create_default_context()) if uri.secure else None
    protocol = ClientProtocol(uri, max_size=max_size)
    connection = WebSocketConnection(
        protocol,
        max_size,
        high_water,
        message_budget=message_budget,
        budget_window=budget_window,
    )
    connection.on_message = on_message
    on_connection(connection)
    try:
        async with asyncio.timeout(timeout):
            host = uri.host if resolve is None else await resolve(uri.host, uri.port)
            await loop.create_connection(
                lambda: connection,
                host,
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
