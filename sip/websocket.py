"""SIP over WebSocket (RFC 7118), server side, sans-I/O.

A browser phone (JsSIP, SIP.js) opens a WebSocket with the subprotocol ``sip``
and sends one SIP message per WebSocket message, text or binary (§5.2).
:class:`SipWebSocket` is one such connection without its socket: bytes in
through :meth:`~SipWebSocket.receive_data`, whole SIP messages and keep-alives
out, bytes to write from :meth:`~SipWebSocket.data_to_send`. The opening
handshake, control frames (ping, pong, close) and protocol errors are the
``websockets`` library's sans-I/O :class:`~websockets.server.ServerProtocol`;
this module adds what is SIP's:

* a handshake that does not offer ``sip`` is refused (400, RFC 7118 §4.1);
* fragments are joined into one message, bounded like a stream's message
  (``MAX_MESSAGE``: a larger one closes the connection with 1009);
* a message of CRLFs only is a keep-alive (RFC 5626 §4.4.1, as SIP.js sends
  them): ``"\\r\\n\\r\\n"`` is reported as a ping to answer with ``"\\r\\n"``;
* what we send goes as text when it is UTF-8 (every SIP message we write is),
  else as binary (§5.2).

No asyncio, no clock, no socket: sip/ws_transport.py is the asyncio shell.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.exceptions import NegotiationError
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG, MAX_BODY_SIZE, MAX_HEADER_SIZE, KeepAlive

__all__ = ["MAX_MESSAGE", "SUBPROTOCOL", "SipWebSocket"]

SUBPROTOCOL = Subprotocol("sip")  # RFC 7118 §7 (IANA WebSocket Subprotocol Name Registry)
MAX_MESSAGE = MAX_HEADER_SIZE + MAX_BODY_SIZE  # what a TCP stream may carry in one message
_MESSAGE_TOO_BIG = 1009  # RFC 6455 §7.4.1


def _require_sip(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol:
    """``sip`` or a refused handshake: a WebSocket without it is not a SIP transport."""
    if SUBPROTOCOL not in offered:
        raise NegotiationError("the WebSocket subprotocol 'sip' is required (RFC 7118)")
    return SUBPROTOCOL


class SipWebSocket:
    """One accepted SIP WebSocket connection's protocol state (RFC 6455 + RFC 7118).

    ``receive_data`` returns, in order, whole SIP messages (bytes, for
    :func:`sip.parser.parse_message`) and :class:`~sip.framing.KeepAlive`
    items. After each call to ``receive_data`` or ``send_message``, write what
    ``data_to_send`` returns; when it says so, close the connection after
    writing (a refused handshake, a closing handshake, a protocol error).
    """

    def __init__(self, *, max_message: int = MAX_MESSAGE) -> None:
        self._protocol = ServerProtocol(
            subprotocols=[SUBPROTOCOL],
            select_subprotocol=_require_sip,
            max_size=max_message,
        )
        self._max_message = max_message
        self._parts: list[bytes] = []  # a fragmented message's frames so far
        self._size = 0
        self.refusal: str | None = None  # why the handshake was refused, if it was

    @property
    def handshaken(self) -> bool:
        """The opening handshake succeeded: SIP may flow."""
        return self._protocol.state is not State.CONNECTING and self.refusal is None

    @property
    def open(self) -> bool:
        return self._protocol.state is State.OPEN

    @property
    def pending(self) -> bool:
        """Bytes of a message (or of the handshake) have arrived, not the whole of it."""
        return self._protocol.state is State.CONNECTING or bool(self._parts)

    def receive_data(self, data: bytes) -> list[bytes | KeepAlive]:
        """Feed received bytes; the SIP messages and keep-alives they completed."""
        protocol = self._protocol
        protocol.receive_data(data)
        out: list[bytes | KeepAlive] = []
        for event in protocol.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event, out)
        return out

    def _handshake(self, request: Request) -> None:
        protocol = self._protocol
        response = protocol.accept(request)
        if response.status_code != 101:
            exc = protocol.handshake_exc
            self.refusal = str(exc) if exc is not None else f"HTTP {response.status_code}"
        protocol.send_response(response)

    def _frame(self, frame: Frame, out: list[bytes | KeepAlive]) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._parts = [bytes(frame.data)]
            self._size = len(frame.data)
        elif frame.opcode is Opcode.CONT and self._parts:
            self._parts.append(bytes(frame.data))
            self._size += len(frame.data)
        else:
            return  # ping, pong, close: the library answers them
        if self._size > self._max_message:
            self._parts = []
            self._protocol.fail(_MESSAGE_TOO_BIG, "SIP message too big")
            return
        if not frame.fin:
            return
        message = b"".join(self._parts)
        self._parts = []
        self._size = 0
        if message.strip(b"\r\n"):
            out.append(message)
        elif message:
            out.append(KEEPALIVE_PING if len(message) >= 4 else KEEPALIVE_PONG)

    def send_message(self, data: bytes) -> bool:
        """Queue one SIP message (or keep-alive); False once the connection cannot send."""
        if self._protocol.state is not State.OPEN:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            self._protocol.send_binary(data)
        else:
            self._protocol.send_text(data)
        return True

    def data_to_send(self) -> tuple[bytes, bool]:
        """The bytes to write, and whether the connection must then be closed."""
        writes = self._protocol.data_to_send()
        close = any(not chunk for chunk in writes)
        return b"".join(writes), close

    def close(self) -> None:
        """Start the closing handshake (1001, going away: the node stops)."""
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(1001, "")

    def release(self) -> None:
        """The connection is gone: nothing more is fed. The library's parser, a
        generator holding the protocol, would otherwise stay parked at its last
        ``yield`` and keep both (and what holds this core) until a full collection;
        so would the ``select_subprotocol`` the library binds to the protocol."""
        protocol = self._protocol
        protocol.parser.close()
        vars(protocol).pop("select_subprotocol", None)
