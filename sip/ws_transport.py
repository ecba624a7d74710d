"""asyncio shells for SIP over WebSocket (RFC 7118): WS and WSS connections.

A :class:`WsConnection` is a stream connection (sip/transport.py) whose bytes
go through :class:`~sip.websocket.SipWebSocket` instead of the Content-Length
framer: it is counted against its source's cap from the moment TCP accepts it,
answers what the peer sent on itself (a *flow*, as a TCP connection is), and
is reached again by the registrar's binding while it stays open (RFC 5626
flows: a browser cannot be connected to). :class:`WssConnection` puts the TLS
of an accepted :class:`~sip.transport.TlsConnection` underneath (memory BIOs,
so a handshaking connection already counts).
"""

from __future__ import annotations

import logging

from sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG, PONG
from sip.transport import Receiver, TcpConnection, TlsConnection, Transports
from sip.websocket import SipWebSocket

__all__ = ["WsConnection", "WssConnection"]

log = logging.getLogger("callswitch.sip")


class WsConnection(TcpConnection):
    """One accepted SIP WebSocket: one SIP message per WebSocket message."""

    transport = "WS"

    def __init__(
        self, receive: Receiver, registry: Transports, remote: tuple[str, int] | None = None
    ) -> None:
        super().__init__(receive, registry, remote)
        self._ws = SipWebSocket()
        self._refusal_logged = False

    def data_received(self, data: bytes) -> None:
        """Plaintext from the peer (a WSS connection's TLS is already off)."""
        if self._closed:
            return
        items = self._ws.receive_data(data)
        self._flush_ws()
        if self._ws.refusal is not None and not self._refusal_logged:
            self._refusal_logged = True
            log.info("sip.ws_refused", extra={"peer": self.remote, "reason": self._ws.refusal})
        messages = 0
        keepalive = False
        for item in items:
            if item is KEEPALIVE_PING:
                keepalive = True
                self.send(PONG)
            elif item is KEEPALIVE_PONG:
                keepalive = True
            elif isinstance(item, bytes):
                messages += 1
                self._receive(item, self)
        self._registry.received(self, messages, keepalive, self._ws.pending)

    def send(self, data: bytes) -> None:
        """One SIP message as one WebSocket message."""
        if not self._closed and self._ws.send_message(data):
            self._flush_ws()

    def _flush_ws(self) -> None:
        out, close = self._ws.data_to_send()
        if out:
            self._write(out)
        if close:
            self.close()

    @property
    def is_open(self) -> bool:
        return not self._closed and self._ws.open

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._ws.release()

    def close(self) -> None:
        if not self._closed and self._ws.open:
            self._ws.close()  # a close frame first (1001) when we are the ones going
            out, _ = self._ws.data_to_send()
            if out:
                self._write(out)
        super().close()


class WssConnection(TlsConnection, WsConnection):
    """A SIP WebSocket over TLS: TLS off first, then the WebSocket (MRO: TLS,
    WebSocket, TCP), and the other way when sending."""

    transport = "WSS"
